"""A restore (rollback, promotion) pins content to a recorded version; mlx restores what its
registry records, never the user's local files. ``local_copy_differs`` says when the local
file a spec names holds other bytes than the restored version."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from contract import Desired, Provider, ProviderError
from engine.plan.details import version_label
from engine.plan.ignore import at
from specs.introspect import kind_info
from state.store import IndexRow


def local_copy_differs(
    provider: Provider,
    desired: Desired,
    restored: str | None,
    root: Path,
    prior: IndexRow | None,
) -> str | None:
    """Why the local file of a restored resource cannot be what it restores, or None.

    ``restored`` is the fingerprint restored; ``prior`` the resource's index row.
    """
    field_name = kind_info(desired.section).content_field
    found, path = at(desired.spec, field_name) if field_name else (False, None)
    if not found or not isinstance(path, str) or "://" in path or restored is None:
        return None
    try:
        now = provider.fingerprint(replace(desired, restore=None))
    except (ProviderError, OSError):
        now = ""  # unreadable
    if now is None and not desired.path(root, path).exists():
        now = ""  # gone (a provider fingerprints a missing file as None)
    if now is None or now == restored:  # None: the provider does not fingerprint it
        return None
    if not now:
        what = f"{path} is missing or unreadable"
    elif prior is not None and prior.content_hash == restored:
        what = f"its bytes at {path} changed outside mlx"
    else:
        version = version_label(desired.restore or {})
        what = f"{path} holds other bytes than version {version} ({now[:19]}…)"
    return f"{what}; mlx cannot restore local files: restore {path} yourself (recorded {restored})"
