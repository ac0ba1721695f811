"""The alert lifecycle's home: what an alert *is* between two runs, and when it notifies.

Monitors, budgets, refresh drift and failed rollouts all raise alerts; this package decides,
without I/O, what each run does to one alert — Prometheus/Alertmanager's shape:

* an alert has a stable ``AlertKey`` (resource, version, signal) so two runs speak of the
  same alert;
* a run observes a ``Condition`` of the signal: ``ok``, ``breach``, or — never silently
  healthy — ``no_data`` / ``error``;
* ``lifecycle.step`` moves the alert ``inactive → pending → firing`` after ``for`` runs that
  were not ok, repeats the notification after ``repeat_interval``, and notifies once more,
  ``resolved``, when it recovers (``send_resolved``).

Delivery (the outbox, retries, silences) and the stored records are the monitors issue's;
they are built on ``lifecycle.step`` and live here too. The package imports only ``common``
and ``contract``: the controller, the engine and the read models import it, never the
other way round.
"""

from alerts.lifecycle import (
    AlertKey,
    AlertRecord,
    AlertState,
    Condition,
    Notify,
    Rule,
    Step,
    step,
)

__all__ = [
    "AlertKey",
    "AlertRecord",
    "AlertState",
    "Condition",
    "Notify",
    "Rule",
    "Step",
    "step",
]
