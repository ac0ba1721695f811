"""A gate's candidate can be an MLflow model directory (the `[mlflow]` extra)."""

from __future__ import annotations

from pathlib import Path

import pytest

from providers.gates.ml.predict import load_model
from tests.conftest import require_extra

mlflow_sklearn = require_extra("mlflow.sklearn", "mlflow")


def test_an_mlflow_model_directory_loads_and_predicts_like_the_model(tmp_path: Path) -> None:
    import numpy as np
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    x, y = load_breast_cancer(return_X_y=True)
    model = LogisticRegression(max_iter=5000).fit(x, y)
    directory = tmp_path / "model"
    mlflow_sklearn.save_model(model, str(directory))
    assert (directory / "MLmodel").is_file()
    loaded = load_model(directory)
    assert np.allclose(loaded.predict_proba(x[:50]), model.predict_proba(x[:50]), atol=1e-12)


def test_a_broken_mlflow_directory_fails_with_a_clear_error(tmp_path: Path) -> None:
    from contract import ProviderError

    directory = tmp_path / "model"
    directory.mkdir()
    (directory / "MLmodel").write_text("flavors:\n  sklearn: {pickled_model: missing.pkl}\n")
    with pytest.raises(ProviderError, match="cannot load the MLflow model"):
        load_model(directory)
