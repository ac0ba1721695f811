"""``models``: model artifacts registered in a registry."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from specs.base import OwnedResource, SpecModel, metadata_field
from specs.kinds import Kind


class CodeRef(SpecModel):
    repo: str | None = None
    commit: str | None = None
    path: str | None = None


class RuntimeEnvironment(SpecModel):
    image: str | None = None
    requirements: str | list[str] | None = None
    python: str | None = None


class Lineage(SpecModel):
    """How the artifact was made. Recorded as registry version tags."""

    code: CodeRef | None = None
    data: list[str] = Field(default_factory=list, description='References: ["${datasets.x}"].')
    features: list[str] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)
    seed: int | None = None
    environment: RuntimeEnvironment | None = None


class Review(SpecModel):
    approved_by: str = Field(..., min_length=1)
    approved_at: datetime | date | str


class Card(SpecModel):
    """A model card; ``risk: high`` needs a ``review`` in protected environments."""

    intended_use: str | None = None
    limitations: str | None = None
    kpi: str | list[str] | dict[str, Any] | None = None
    risk: Literal["low", "medium", "high"] | None = None
    review: Review | None = None


class InputColumn(SpecModel):
    """One column a model takes: its name, the type of its values, whether null is allowed."""

    name: str = Field(..., min_length=1)
    type: Literal["float", "int", "bool", "string"]
    nullable: bool = False


class Model(OwnedResource):
    """A model artifact. A new registry version is made only when its content changes."""

    section: ClassVar[str] = "models"
    computed: ClassVar[tuple[str, ...]] = ("version", "uri", "fingerprint", "input_schema")
    plan_outputs: ClassVar[tuple[str, ...]] = ("version", "uri", "fingerprint")
    content_field: ClassVar[str | None] = "artifact"
    keeps_history: ClassVar[bool] = True

    artifact: str = Field(..., min_length=1, description="Path (relative to the spec dir) or URI.")
    flavor: str = Field("sklearn", description="sklearn, pyfunc, onnx, …")
    inputs: list[InputColumn] | None = Field(
        None,
        min_length=1,
        description="The model's input schema, in its column order (wins over what the artifact "
        "says). Without it the schema is read from the artifact: scikit-learn's "
        "feature_names_in_ / n_features_in_, or an MLflow signature.",
    )
    lineage: Lineage | None = metadata_field(None)
    card: Card | None = metadata_field(None)

    @field_validator("inputs")
    @classmethod
    def _unique_columns(cls, value: list[InputColumn] | None) -> list[InputColumn] | None:
        seen: set[str] = set()
        for column in value or ():
            if column.name in seen:
                raise ValueError(f"column {column.name!r} is declared twice")
            seen.add(column.name)
        return value


KIND = Kind(
    "models", Model, default_provider="local", order=20, version_output="version", reviewed=True
)
