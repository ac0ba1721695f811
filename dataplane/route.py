"""The route document (``docs/gateway.md``), parsed and checked.

The control plane (the ``gateway`` provider) writes one JSON document per endpoint into the state
database; this module turns it into frozen objects the request path reads without checking
anything again. Unknown keys are ignored (a newer control plane may add some); a document whose
``format`` is newer than this gateway understands, or that is missing what serving needs, is
refused with a ``RouteError`` whose message is one line naming the endpoint and the field.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from contract import Traffic

#: The route document format this gateway reads.
FORMAT = 1
#: The bound of an LLM upstream's answer when the route names none (``client.max_response_bytes``).
DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024


class RouteError(ValueError):
    """A route document that cannot be served; the message is one line."""


class Kind(StrEnum):
    MODEL = "model"
    PROMPT = "prompt"


class _Doc(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class RoutingRule(_Doc):
    when: str | dict[str, Any]  # compiled by gateway.rules when the variant loads
    model: str


class Routing(_Doc):
    rules: tuple[RoutingRule, ...] = ()
    default: str | None = None


class PromptDoc(_Doc):
    template: str
    system: str | None = None
    model: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    #: what a caller may set per request (compiled by ``gateway.prompts`` when the variant loads)
    allow_params: dict[str, Any] = Field(default_factory=dict)
    variables: tuple[str, ...] = ()
    routing: Routing | None = None
    retrieval_version: str | int | None = None


class VariantDoc(_Doc):
    name: str
    version: str | int
    fingerprint: str | None = None
    flavor: str | None = None
    artifact: str | None = None
    #: models: ``sha256:`` of the artifact's bytes as the control plane installed them
    #: (``common.digests``); older documents have only the fingerprint
    digest: str | None = None
    #: models: the version's recorded input schema (``common.model_inputs``)
    input_schema: dict[str, Any] | None = None
    prompt: PromptDoc | None = None
    deployed_at: str | None = None

    @property
    def version_text(self) -> str:
        return str(self.version)

    @property
    def expected_digest(self) -> str | None:
        """What the artifact's bytes must hash to: the recorded digest, else a ``sha256:``
        fingerprint (a registry's fingerprint of the same bytes); None: nothing to check."""
        if self.digest:
            return self.digest
        fp = self.fingerprint or ""
        return fp if fp.startswith("sha256:") else None


class LogDoc(_Doc):
    payloads: float = Field(default=0.0, ge=0, le=1)


class CacheDoc(_Doc):
    ttl_s: float = Field(gt=0)


class KeyRef(_Doc):
    """Where a replica finds a prompt endpoint's upstream key: never the key itself.

    ``{"env": "OPENAI_API_KEY"}``: the spec wrote ``${env.OPENAI_API_KEY}``; each replica reads
    that variable of its own environment. ``{"spec": true}``: the spec writes the key some other
    way (literal text, a variable, text around ``${env.X}``), which only the spec can resolve:
    a replica asks the spec directory it serves (``gateway.keys``).
    """

    env: str | None = Field(default=None, min_length=1)
    spec: bool = False

    @model_validator(mode="after")
    def _one(self) -> KeyRef:
        if (self.env is None) == (not self.spec):
            raise ValueError('expected {"env": NAME} or {"spec": true}')
        return self


class ClientDoc(_Doc):
    type: str = "openai"
    base_url: str = "https://api.openai.com/v1"
    timeout_s: float = Field(default=60, gt=0)
    backoff_s: float = Field(default=0.5, ge=0)
    retries: int = Field(default=2, ge=0, le=10)
    model: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    max_response_bytes: int = Field(default=DEFAULT_MAX_RESPONSE_BYTES, gt=0)
    #: the upstream key's reference; null: the endpoint declares none (a local upstream)
    api_key: KeyRef | None = None

    @property
    def key_written(self) -> bool:
        """Whether the control plane wrote ``api_key`` (null included): documents of releases
        before the reference existed have none, and the spec is asked as it was then."""
        return "api_key" in self.model_fields_set


class Price(_Doc):
    input_per_1k: float = Field(default=0, ge=0)
    output_per_1k: float = Field(default=0, ge=0)
    #: cache reads (cached input tokens); None: billed at ``input_per_1k``
    cached_input_per_1k: float | None = Field(default=None, ge=0)


class RouteDoc(_Doc):
    format: int = FORMAT
    endpoint: str
    address: str | None = None
    environment: str | None = None
    kind: Kind
    subject: str | None = None
    variants: dict[str, VariantDoc]
    #: the one split type (whole percents, as every release wrote them; ``10.0`` reads as 10)
    traffic: Traffic
    log: LogDoc = Field(default_factory=LogDoc)
    cache: CacheDoc | None = None
    client: ClientDoc | None = None
    pricing: dict[str, Price] = Field(default_factory=dict)
    timeout_s: float = Field(default=30, gt=0)
    max_body_bytes: int = Field(default=1_048_576, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> RouteDoc:
        t = self.traffic
        for role, name in (("stable", t.stable), ("candidate", t.candidate)):
            if name is not None and name not in self.variants:
                known = ", ".join(sorted(self.variants)) or "none"
                raise ValueError(
                    f"traffic.{role} names variant {name!r}, not among the variants ({known})"
                )
        for name, variant in self.variants.items():
            if self.kind is Kind.PROMPT and variant.prompt is None:
                raise ValueError(f"variants.{name}: a prompt endpoint's variant needs `prompt`")
            if self.kind is Kind.MODEL and not variant.artifact:
                raise ValueError(f"variants.{name}: a model endpoint's variant needs `artifact`")
        if self.kind is Kind.PROMPT and self.client is not None and self.client.type != "openai":
            raise ValueError(f"client.type {self.client.type!r} is not supported (only openai)")
        return self

    @property
    def address_text(self) -> str:
        return self.address or f"endpoints.{self.endpoint}"

    def candidate_name(self) -> str | None:
        """The candidate variant, if one is named that is not the stable one."""
        c = self.traffic.candidate
        return c if c is not None and c != self.traffic.stable else None


def parse(endpoint: str, doc: Any) -> RouteDoc:
    """The route document of ``endpoint``, checked; ``RouteError`` if it cannot be served."""
    if not isinstance(doc, dict):
        raise RouteError(f"route of endpoint {endpoint!r}: the document is not a JSON object")
    fmt = doc.get("format", FORMAT)
    if not isinstance(fmt, int) or fmt > FORMAT:
        raise RouteError(
            f"route of endpoint {endpoint!r}: format {fmt!r} is newer than this gateway reads "
            f"({FORMAT}); upgrade mlx on this replica"
        )
    try:
        return RouteDoc.model_validate({"endpoint": endpoint, **doc})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ())) or "document"
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        raise RouteError(f"route of endpoint {endpoint!r}: {where}: {msg}") from None
