"""contract.VersionRef: the one reading of a registered version out of recorded outputs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from contract import Variant, VersionRef, version_outputs

OF: list[tuple[str, Mapping[str, Any] | None, Any]] = [
    ("version", {"version": 3, "fingerprint": "sha256:a", "uri": "local://models/x/3"}, 3),
    ("revision (a dataset's)", {"revision": 2, "fingerprint": "sha256:b"}, 2),
    ("both: version wins", {"version": 4, "revision": 9}, 4),
    ("a null version is read as recorded", {"version": None, "revision": 9}, None),
    ("none", {"fingerprint": "sha256:c"}, None),
    ("empty outputs", {}, None),
    ("no outputs", None, None),
    ("a string id stays a string", {"version": "3"}, "3"),
    (
        "an S3 snapshot id",
        {"revision": "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrH"},
        "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrH",
    ),
    ("version 0 is a version", {"version": 0}, 0),
]


@pytest.mark.parametrize(("outputs", "version"), [c[1:] for c in OF], ids=[c[0] for c in OF])
def test_of_reads_version_then_revision(outputs: Mapping[str, Any] | None, version: Any) -> None:
    ref = VersionRef.of(outputs)
    assert ref.version == version
    assert type(ref.version) is type(version)  # unconverted: shown and recorded as it was
    assert ref.known is (version is not None)
    assert ref.label == (f"v{version}" if version is not None else None)
    # the reading every copy of ``version_of`` did, byte for byte
    old = (outputs or {}).get("version", (outputs or {}).get("revision"))
    assert ref.version == old


def test_of_keeps_fingerprint_and_uri() -> None:
    ref = VersionRef.of({"version": 3, "fingerprint": "sha256:a", "uri": "u", "size": 9})
    assert ref == VersionRef(3, "sha256:a", "u")
    assert ref.known_fields() == {"version": 3, "fingerprint": "sha256:a", "uri": "u"}
    assert VersionRef.of({"revision": 1}).known_fields() == {"version": 1}


@pytest.mark.parametrize(("version", "number"), [(3, 3), ("3", 3)], ids=["int", "numeric string"])
def test_number_is_an_int(version: Any, number: int) -> None:
    assert VersionRef(version).number == number


@pytest.mark.parametrize("version", [None, "3HL4kq"], ids=["none", "not a number"])
def test_number_refuses_what_is_not_one(version: Any) -> None:
    with pytest.raises(ValueError):
        _ = VersionRef(version).number


SAME: list[tuple[str, Mapping[str, Any] | None, Mapping[str, Any] | None, bool]] = [
    (
        "same fingerprint",
        {"version": 1, "fingerprint": "a"},
        {"version": 2, "fingerprint": "a"},
        True,
    ),
    (
        "other fingerprint",
        {"version": 1, "fingerprint": "a"},
        {"version": 1, "fingerprint": "b"},
        False,
    ),
    ("no fingerprint: by version", {"version": 1}, {"version": 1, "fingerprint": "a"}, True),
    ("version against revision", {"version": 1}, {"revision": 1}, True),
    ("no versions", {"fingerprint": None}, {"fingerprint": None}, False),
    ("nothing", None, {"version": 1}, False),
]


@pytest.mark.parametrize(("a", "b", "same"), [c[1:] for c in SAME], ids=[c[0] for c in SAME])
def test_same_as_by_fingerprint_else_by_version(
    a: Mapping[str, Any] | None, b: Mapping[str, Any] | None, same: bool
) -> None:
    assert VersionRef.of(a).same_as(VersionRef.of(b)) is same
    assert VersionRef.of(b).same_as(VersionRef.of(a)) is same


def test_version_outputs_keeps_the_recorded_keys() -> None:
    outputs = {"revision": 2, "fingerprint": "f", "uri_resolved": "s3://b/k", "size": 1}
    assert version_outputs(outputs) == {"revision": 2, "fingerprint": "f"}


def test_a_variant_reads_its_version_through_the_ref() -> None:
    variant = Variant("v3", "models.fraud", {"revision": 3, "fingerprint": "f"})
    assert variant.version == 3
    assert variant.ref == VersionRef(3, "f")
