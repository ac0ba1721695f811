"""The database plumbing the state and the inference log share."""

from __future__ import annotations


def redact_url(url: str) -> str:
    """``url`` with its password (if any) shown as ``***``; works on URLs that do not parse."""
    scheme, sep, rest = url.partition("://")
    at = rest.partition("?")[0].rfind("@")
    if not sep or at < 0:
        return url
    user, colon, _password = rest[:at].partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{rest[at + 1 :]}"
