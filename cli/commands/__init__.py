"""CLI commands, one small module per group. Each imports the core lazily."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click


def register(cli: click.Group, common: Callable[..., Any]) -> None:
    from cli.commands import alerts, core, evals, inspect, release, rollout, state

    for module in (core, evals, inspect, release, rollout, state, alerts):
        module.register(cli, common)
