"""Rollouts as controllers of the pass harness: ``drive`` (a pass over a rollout that
drives an endpoint's traffic), ``alias`` (a release through the registry alone),
``provider`` (the adapter plans and applies go through)."""
