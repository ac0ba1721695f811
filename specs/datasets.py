"""``datasets``: data mlx fingerprints at plan time."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from specs.base import OwnedResource, SpecModel, metadata_field, replace_field
from specs.kinds import Kind

ColumnType = Literal["int", "float", "bool", "string", "category", "datetime"]


class Provenance(SpecModel):
    source: str | None = None
    pulled_at: str | None = None
    filters: str | list[str] | dict[str, str] | None = None


class Labeling(SpecModel):
    guidelines_version: str | None = None
    annotators: list[str] | int | None = None


class Dataset(OwnedResource):
    """A dataset: a file or object whose bytes mlx fingerprints."""

    section: ClassVar[str] = "datasets"
    computed: ClassVar[tuple[str, ...]] = ("fingerprint", "revision", "snapshot", "uri_resolved")
    plan_outputs: ClassVar[tuple[str, ...]] = ("fingerprint", "revision")
    content_field: ClassVar[str | None] = "uri"
    keeps_history: ClassVar[bool] = True

    uri: str = replace_field(
        ..., min_length=1, description="Path (relative to the spec dir) or URI."
    )
    version: str | None = Field(
        None,
        description="Pinned version: DVC md5, lakeFS commit, Delta/Iceberg version, S3 version id.",
    )
    format: Literal["csv", "tsv", "parquet", "jsonl", "json"] | None = None
    schema_: dict[str, ColumnType] | None = Field(None, alias="schema")
    provenance: Provenance | None = metadata_field(None)
    labeling: Labeling | None = metadata_field(None)


KIND = Kind(
    "datasets", Dataset, default_provider="local", order=10, version_output="revision", data=True
)
