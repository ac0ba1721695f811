"""Fixtures of the gateway tests: a trained scikit-learn model, a spec dir, its route table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_extra

FEATURES = ["amount", "age", "hour"]


@pytest.fixture(scope="session", autouse=True)
def _serve_extra() -> None:
    for module in ("starlette", "uvicorn", "httpx", "prometheus_client", "genai_prices", "orjson"):
        require_extra(module, "serve")


def training_frame(seed: int = 0) -> Any:
    """A small numeric frame (three features) and a target."""
    np = require_extra("numpy", "ml")
    pd = require_extra("pandas", "ml")
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {
            "amount": rng.gamma(2.0, 50.0, 200).round(2),
            "age": rng.integers(18, 80, 200),
            "hour": rng.integers(0, 24, 200),
        }
    )
    y = 0.02 * x["amount"] - 0.1 * x["age"] + 0.5 * x["hour"] + rng.normal(0, 1, 200)
    return x, y


def train(path: Path, seed: int = 0, alpha: float = 1.0) -> Any:
    """Fit a Ridge regressor on a DataFrame (so it has ``feature_names_in_``) and save it."""
    require_extra("sklearn", "ml")
    import joblib
    from sklearn.linear_model import Ridge

    x, y = training_frame(seed)
    model = Ridge(alpha=alpha).fit(x, y)
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)
    return model


def dump(obj: Any, path: Path) -> Path:
    import joblib

    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(obj, path)
    return path


def floats(names: list[str], nullable: tuple[str, ...] = ()) -> Any:
    """The input schema of a numeric model fitted on ``names`` (``gateway.inputs``)."""
    from gateway.inputs import Column, ColumnType, InputSchema

    return InputSchema(tuple(Column(n, ColumnType.FLOAT, n in nullable) for n in names), "sklearn")


def spec_dir(root: Path, extra: str = "") -> Path:
    """A spec dir with a state database; ``extra`` YAML is added as ``spec.yaml``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "mlx.yaml").write_text("mlx:\n  state: sqlite:///.mlx/state.db\n")
    if extra:
        (root / "spec.yaml").write_text(extra)
    (root / ".mlx").mkdir(exist_ok=True)
    return root


def routes(spec: Path) -> Any:
    from dataplane.table import RouteStore

    return RouteStore.open(f"sqlite:///{spec / '.mlx' / 'state.db'}")


def log_url(spec: Path) -> str:
    return f"sqlite:///{spec / '.mlx' / 'inference.db'}"
