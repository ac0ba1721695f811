"""Statuses recorded in state, as enums (``StrEnum``: stored and compared as their text)."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """A resource record's status."""

    OK = "ok"
    #: A create that failed half-way: the object may or may not exist; the next apply
    #: creates it again (a registry adopts what is there).
    TAINTED = "tainted"
    #: A gate that ran and did not pass (its evidence is recorded).
    FAILED = "failed"
    #: ``mlx refresh`` found it changed outside mlx; the next apply restores it.
    DRIFTED = "drifted"
    #: ``mlx refresh`` found it deleted outside mlx; the next apply creates it again.
    MISSING = "missing"
    #: An operation that finishes later (a rollout paused between steps).
    IN_PROGRESS = "in_progress"


class VersionStatus(StrEnum):
    """A state version's status."""

    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class DriftStatus(StrEnum):
    DRIFTED = "drifted"
    MISSING = "missing"
    UNREADABLE = "unreadable"
