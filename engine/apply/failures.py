"""What a change that did not apply leaves behind, and what it says.

What a failure leaves in state depends on what failed: a failed *create* leaves a tainted
record (the next apply creates again; a registry adopts what it finds), a failed *update*
leaves the record as it was (the next apply tries the update again) — so one network
error never turns into a replacement. A change skipped because something it waits for
did not apply says which.
"""

from __future__ import annotations

from collections.abc import Collection

from common.diagnostics import MlxError
from contract import ProviderError
from engine.apply.outcomes import Outcome, OutcomeStatus
from engine.plan.model import Action, ResourceChange
from specs.introspect import kind_info
from state.status import Status
from state.store import StateWriter
from state.writes import RecordWrite

#: What a provider or the engine raises for a resource that did not apply (reported as
#: its error); anything else is reported with its type, as unexpected.
EXPECTED = (ProviderError, MlxError, OSError, ValueError, KeyError, TypeError, RuntimeError)


def failure_message(exc: BaseException, unexpected: bool = False) -> str:
    """A failure as its outcome says it: an error's diagnostics, an unexpected one's type."""
    message = str(exc) if not unexpected else f"{type(exc).__name__}: {exc}"
    if isinstance(exc, MlxError):
        message = "; ".join(d.summary for d in exc.diagnostics)
    return message


def failed(
    writer: StateWriter,
    change: ResourceChange,
    exc: BaseException,
    *,
    recorded: bool,
    unexpected: bool = False,
) -> Outcome:
    """Record that ``change`` failed with ``exc`` (``recorded``: it had a record when the run
    started); its outcome. A failure to record it is said in the outcome, not raised."""
    message = failure_message(exc, unexpected)
    try:
        record_failure(writer, change, message, recorded=recorded)
    except Exception as state_exc:
        message += f" (and recording the failure failed: {state_exc})"
    return Outcome(change.address, change.action, OutcomeStatus.ERROR, message)


def record_failure(
    writer: StateWriter, change: ResourceChange, message: str, *, recorded: bool
) -> None:
    """What a failure leaves in state: a tainted record only where a create failed."""
    if not recorded and change.action in (Action.CREATE, Action.REPLACE, Action.RUN):
        writer.put(
            RecordWrite(
                address=change.address,
                section=change.section,
                name=change.name,
                provider=change.provider,
                action=change.action.value,
                status=Status.TAINTED,
                spec_hash=None,
                meta_hash=None,
                content_hash=None,
                attributes=change.after or {},
                outputs={},
                dependencies=change.depends_on,
                error=message,
            )
        )
    elif change.action is Action.REPLACE and not (
        kind_info(change.section).keeps_history or kind_info(change.section).create_before_destroy
    ):
        # the old object was deleted before the create failed
        writer.taint(change.address, message, change.action.value)
    else:
        # a failed update, delete or re-create keeps the record: the next apply retries
        writer.note(change.address, change.action.value, message)


def skip_message(because: Collection[str], in_progress: Collection[str]) -> str:
    """Why a change did not run: ``because`` did not apply — or all of them are operations
    still in progress (``in_progress``), which it waits for."""
    waiting = [a for a in because if a in in_progress]
    if waiting and len(waiting) == len(because):
        return f"waits for {', '.join(sorted(waiting))} to finish"
    return f"skipped: depends on {', '.join(sorted(because))}, which did not apply"
