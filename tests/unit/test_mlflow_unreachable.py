"""providers.mlflow.client.unreachable: MLflow's error texts after its retries, per version."""

from __future__ import annotations

import pytest

from providers.mlflow.client import unreachable


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        # mlflow <= 3.17: urllib3's MaxRetryError
        (
            "API request to http://h/api/2.0/mlflow/registered-models/get failed with exception "
            "HTTPConnectionPool(host='h', port=1): Max retries exceeded with url: /x "
            "(Caused by ResponseError('too many 503 error responses'))",
            "cannot reach the server: it answered HTTP 503 (3 attempts)",
        ),
        # mlflow 3.18: the last response once the retries are spent
        (
            "API request to endpoint /api/2.0/mlflow/registered-models/get failed with error "
            "code 503 != 200. Response body: 'injected HTTP 503'",
            "cannot reach the server: it answered HTTP 503 (3 attempts)",
        ),
        (
            "API request to endpoint /x failed with error code 429 != 200. Response body: ''",
            "cannot reach the server: it answered HTTP 429 (3 attempts)",
        ),
        # a status MLflow does not retry is an answer, not an unreachable server
        ("API request to endpoint /x failed with error code 404 != 200. Response body: ''", None),
        ("RESOURCE_DOES_NOT_EXIST: Registered Model with name=x not found", None),
    ],
)
def test_unreachable(text: str, reason: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    assert unreachable(text) == reason
