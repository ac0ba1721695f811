"""The truth column, encoded once: which task this is, which classes, which is positive.

CSV cells are strings while a model's ``classes_`` are numbers or booleans, so
labels are compared through ``key``: ``"1"``, ``1``, ``1.0`` and ``True`` are the
same class, and so are ``"true"`` and ``True``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from contract import ProviderError
from providers.gates.ml.metrics import REGRESSION


def key(value: Any) -> str:
    """A canonical text for a class label."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()  # numpy scalar
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("true", "false"):
            return "1" if text.lower() == "true" else "0"
        value = text
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if number.is_integer():
        return str(int(number))
    return repr(number)


@dataclass(frozen=True)
class Truth:
    task: str
    y: Any  # binary: 0/1; multiclass: class index; regression: float
    classes: tuple[str, ...] = ()  # class keys, in the order of probability columns
    positive: str | None = None  # binary: the positive class's key

    @property
    def rows(self) -> int:
        return int(self.y.shape[0])


def infer_task(
    declared: str,
    metrics: Iterable[str],
    model_classes: Sequence[Any] | None,
    labels: Sequence[Any],
) -> str:
    """Explicit ``task``, else what the metrics ask for, else the model, else the labels."""
    if declared != "auto":
        return declared
    names = set(metrics)
    regression = names & set(REGRESSION)
    if regression and names - set(REGRESSION):
        raise ProviderError(
            f"metrics mix regression ({', '.join(sorted(regression))}) and classification "
            f"({', '.join(sorted(names - set(REGRESSION)))}); set `task` or split the gate"
        )
    if regression:
        return "regression"
    classes = model_classes if model_classes is not None else sorted({key(v) for v in labels})
    if not names and model_classes is None and len(classes) > 20:
        return "regression"
    return "binary" if len(classes) <= 2 else "multiclass"


def encode(
    task: str,
    labels: Sequence[Any],
    *,
    classes: Sequence[Any] | None,
    positive_label: Any,
    source: str,
) -> Truth:
    import numpy as np

    if any(v in ("", None) for v in labels):
        missing = sum(1 for v in labels if v in ("", None))
        raise ProviderError(f"{source}: the label column has {missing} empty value(s)")
    if task == "regression":
        try:
            return Truth(task, np.array(labels, dtype=float))
        except ValueError:
            raise ProviderError(f"{source}: labels of a regression task must be numbers") from None
    keys = [key(v) for v in labels]
    known = [key(c) for c in classes] if classes is not None else sorted(set(keys), key=_order)
    index = {k: i for i, k in enumerate(known)}
    unknown = sorted(set(keys) - set(index))
    if unknown:
        raise ProviderError(
            f"{source}: label value(s) {', '.join(unknown[:5])} are not among the model's "
            f"classes ({', '.join(known)})"
        )
    if task == "binary":
        if len(known) > 2:
            raise ProviderError(f"task is binary but there are {len(known)} classes: {known}")
        positive = positive_key(known, positive_label)
        y = np.fromiter((k == positive for k in keys), dtype=np.int64, count=len(keys))
        return Truth(task, y, tuple(known), positive)
    y = np.fromiter((index[k] for k in keys), dtype=np.int64, count=len(keys))
    return Truth(task, y, tuple(known))


def positive_key(classes: Sequence[str], positive_label: Any) -> str:
    """``positive_label`` if given, else 1, else the last class in sorted order."""
    if positive_label is not None:
        wanted = key(positive_label)
        if wanted not in classes and len(classes) == 2:
            raise ProviderError(
                f"positive_label {positive_label!r} is not one of the classes {list(classes)}"
            )
        return wanted
    if "1" in classes or set(classes) <= {"0"}:
        return "1"
    return sorted(classes, key=_order)[-1] if classes else "1"


def _order(k: str) -> tuple[int, float, str]:
    try:
        return (0, float(k), k)
    except ValueError:
        return (1, 0.0, k)
