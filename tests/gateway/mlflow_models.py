"""MLflow ``PythonModel``s the gateway tests save (importable by the ``mlx serve`` they start)."""

from __future__ import annotations

import mlflow.pyfunc


class RaisesOnPredict(mlflow.pyfunc.PythonModel):
    """Raises ``ValueError`` on every input its signature let through (a model with a bug)."""

    # no type hints: MLflow would take them for the signature (this one has its own)
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        raise ValueError("matrices are not aligned")
