"""`mlx --help` stays fast: it imports none of the heavy packages."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import MLX

HEAVY = (
    "boto3",
    "botocore",
    "mlflow",
    "numpy",
    "scipy",
    "pandas",
    "sklearn",
    "sqlalchemy",
    "pydantic",
    "networkx",
    # the gateway stack: only `mlx serve` imports it
    "gateway",
    "starlette",
    "uvicorn",
    "httpx",
    "prometheus_client",
    "genai_prices",
    "orjson",
    "uvloop",
)


def test_help_imports_nothing_heavy() -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", str(MLX), "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in proc.stderr.splitlines()}
    assert "click" in imported  # the measurement works
    assert not imported & set(HEAVY), imported & set(HEAVY)
    assert "Commands:" in proc.stdout


def test_plan_imports_no_ml_or_cloud_packages(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import BASIC, write_spec

    spec = write_spec(tmp_path / "spec", BASIC)
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", str(MLX), "plan"],
        capture_output=True,
        text=True,
        cwd=spec,
    )
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in proc.stderr.splitlines()}
    assert "Plan: 3 to add" in proc.stdout
    assert not imported & {"boto3", "botocore", "mlflow", "numpy", "scipy", "pandas", "sklearn"}
