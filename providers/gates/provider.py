"""The ``gate`` provider: ``evals.*`` resources, judged at apply time.

``create``/``update`` run the gate (``evaluate``) and record its verdict;
``delete`` forgets it (a gate owns nothing outside mlx's state). A gate that
cannot run (data missing, endpoint down after its retries, a model that does
not load) fails closed: ``Result(failed=True)`` with the reason, so the
engine stores the evidence and skips everything that depends on the gate.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from contract import (
    Change,
    Context,
    Desired,
    Gate,
    Prior,
    Problem,
    Provider,
    ProviderError,
    Result,
)
from providers.files import PathRefused, confined, hasher_for
from providers.gates.common import GateEnv, Verdict, now
from specs.evals import Eval

#: Packages an ML gate needs, and the extra that installs them.
_ML_PACKAGES = ("numpy", "sklearn", "joblib", "scipy")


class GateProvider(Provider, Gate):
    sections = frozenset({"evals"})
    #: the LLM client's key is sent to the endpoint as a bearer token, never stored
    secret_fields = {"evals": ("client.api_key",)}

    def __init__(self, config: dict[str, Any], context: Context):
        super().__init__(config, context)
        self.hasher = hasher_for(context.data_dir)

    # -- planning -----------------------------------------------------------------------
    def check(self, desired: Desired) -> list[Problem]:
        try:
            spec = Eval.model_validate(desired.spec)
        except ValidationError as exc:
            return [Problem(tuple(e["loc"]), e["msg"]) for e in exc.errors()]
        problems = []
        for field in ("cases", "predictions"):
            value = getattr(spec, field)
            if value is None:
                continue
            try:  # inside the spec dir or mlx.paths, and a regular file (never a FIFO)
                confined(self.context.root, value, self.context.allowed_paths, what=field)
            except PathRefused as exc:
                problems.append(Problem((field,), str(exc)))
                continue
            if not self._path(value).is_file():
                problems.append(Problem((field,), f"{field} file not found: {self._path(value)}"))
        kind = spec.subject.split(".", 1)[0]
        if not spec.is_llm and kind != "models":
            problems.append(
                Problem(("subject",), "an ML gate judges a model; a prompt needs `cases`")
            )
        if spec.is_llm and not problems:
            problems.extend(self._check_cases(spec))
        if not spec.is_llm and not problems:
            problems.extend(self._check_columns(spec))
        return problems

    def _check_columns(self, spec: Eval) -> list[Problem]:
        """Label and slice columns exist in the eval data, when it is a local file already."""
        from providers.gates.ml.table import header

        peers = self.context.peers
        declared = (peers.spec(spec.dataset) if peers and spec.dataset else None) or {}
        sources = []
        if isinstance(declared.get("uri"), str) and "://" not in declared["uri"]:
            try:  # a dataset path mlx may not read is the dataset's own error: not read here
                confined(self.context.root, declared["uri"], self.context.allowed_paths)
            except PathRefused:
                return []
            sources.append(self._path(declared["uri"]))
        if spec.predictions is not None:
            sources.append(self._path(spec.predictions))
        columns: set[str] = set()
        for source in sources:
            found = header(source)
            if found is None:
                return []  # not readable cheaply (yet): the gate itself will tell
            columns |= set(found)
        if not sources:
            return []
        where = " or ".join(_shown(s, self.context.root) for s in sources)
        wanted: list[tuple[tuple[str | int, ...], str | None]] = [(("label",), spec.label)]
        wanted += [
            (("slices", "by", i), c) for i, c in enumerate(spec.slices.by if spec.slices else [])
        ]
        return [
            Problem(path, f"column {name!r} is not in {where}")
            for path, name in wanted
            if name is not None and name not in columns
        ]

    def _check_cases(self, spec: Eval) -> list[Problem]:
        from providers.gates.llm.cases import load_cases

        assert spec.cases is not None
        try:
            load_cases(self._path(spec.cases), list(spec.assert_))
        except ProviderError as exc:
            return [Problem(("cases",), str(exc))]
        return []

    def fingerprint(self, desired: Desired) -> str | None:
        """The gate's own files (cases, predictions): editing one re-runs the gate."""
        parts = []
        for field in ("cases", "predictions"):
            value = desired.spec.get(field)
            if isinstance(value, str):
                path = self._path(value)
                digest = self.hasher.digest(path) if path.is_file() else "missing"
                parts.append(f"{field}={digest}")
        if not parts:
            return None
        return "sha256:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def planned_outputs(self, desired: Desired) -> dict[str, Any]:
        return {}

    # -- applying ---------------------------------------------------------------------------
    def create(self, desired: Desired) -> Result:
        return self.evaluate(desired)

    def update(self, prior: Prior, desired: Desired, change: Change) -> Result:
        if not (change.behaviour or change.content) and "passed" in prior.outputs:
            # a label or description edit: the recorded verdict still holds
            passed = bool(prior.outputs["passed"])
            return Result(dict(prior.outputs), failed=not passed, message=None)
        return self.evaluate(desired)

    def delete(self, prior: Prior) -> None:
        return None

    def evaluate(self, desired: Desired) -> Result:
        return self._evaluate(desired, {})

    def rerun(self, desired: Desired, pinned: Mapping[str, Mapping[str, Any]]) -> Result:
        """The gate again on recorded versions (a ``type: eval`` monitor): the subject and the
        dataset in ``pinned`` are materialized at those versions. An LLM gate calls its
        endpoint afresh (no response cache: the endpoint's behaviour *now* is what is
        watched); a gate judging a predictions file has no behaviour to re-run."""
        spec = Eval.model_validate(desired.spec)
        if spec.predictions is not None:
            raise ProviderError(
                f"{desired.address} judges a predictions file, not its subject: "
                "there is no released behaviour to re-run"
            )
        if spec.is_llm:
            desired = replace(desired, spec={**desired.spec, "cache": False})
        return self._evaluate(desired, pinned)

    def _evaluate(self, desired: Desired, pinned: Mapping[str, Mapping[str, Any]]) -> Result:
        spec = Eval.model_validate(desired.spec)
        with tempfile.TemporaryDirectory(prefix="mlx-gate-") as scratch:
            env = GateEnv(self.context, self.hasher, Path(scratch), pinned)
            try:
                verdict = self._run(spec, desired, env)
            except ProviderError as exc:
                verdict = _could_not_run(desired, spec, str(exc))
            except OSError as exc:
                verdict = _could_not_run(desired, spec, f"{type(exc).__name__}: {exc}")
            except ImportError as exc:
                missing = exc.name or str(exc)
                hint = (
                    " (pip install 'mlxctl[ml]')" if missing.split(".")[0] in _ML_PACKAGES else ""
                )
                verdict = _could_not_run(desired, spec, f"missing package {missing}{hint}")
        outputs = {
            "passed": verdict.passed,
            "result": verdict.message,
            "evidence": verdict.evidence,
            "report": verdict.report,
        }
        return Result(outputs, failed=not verdict.passed, message=verdict.message)

    def _run(self, spec: Eval, desired: Desired, env: GateEnv) -> Verdict:
        if spec.is_llm:
            from providers.gates.llm import gate as llm_gate

            return llm_gate.run(spec, desired, env)
        from providers.gates.ml import gate as ml_gate

        return ml_gate.run(spec, desired, env)

    def _path(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else self.context.root / p

    def close(self) -> None:
        self.hasher.save()


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _could_not_run(desired: Desired, spec: Eval, reason: str) -> Verdict:
    message = f"gate could not run (fails closed): {reason}"
    evidence = {
        "kind": "llm" if spec.is_llm else "ml",
        "gate": desired.address,
        "evaluated_at": now(),
        "passed": False,
        "error": reason,
        "subject": {"address": spec.subject, **(desired.inputs.get(spec.subject) or {})},
    }
    report = f"{desired.address}: FAILED (could not run)\n  {reason}\n"
    return Verdict(False, message, report, evidence)
