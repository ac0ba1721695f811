"""mlx's own controllers: one pass harness (``controller.harness``) and what it drives —
rollouts today (``controller.rollouts``: canary, shadow, A/B; the pure step in
``controller.reconcile``, the recorded state in ``controller.state``), monitors and
budgets next."""

from __future__ import annotations

#: The provider types mlx's controllers answer for, by ``type``: the adapters through which
#: plans and applies reach a controller. Built in, not plugins (``engine.plugins`` looks
#: here before the ``mlx.providers`` entry points): a controller is mlx's own code.
ADAPTERS: dict[str, str] = {"rollout": "controller.rollouts.provider:RolloutProvider"}
