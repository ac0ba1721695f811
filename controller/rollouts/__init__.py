"""Rollouts as controllers: ``drive`` (a pass over a rollout that drives an endpoint's
traffic), ``provider`` (the adapter plans and applies go through)."""
