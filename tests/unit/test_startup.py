"""`mlx --help` stays fast: it imports none of the heavy packages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def _run_script(body: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The console script's ``run`` in a fresh interpreter, after ``body`` ran."""
    argv = ["mlx", *args]
    code = f"import sys\n{body}\nsys.argv = {argv!r}\nfrom cli.app import run\nrun()\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_the_console_script_runs_exit_handlers_and_flushes_before_its_hard_exit(
    tmp_path: Path,
) -> None:
    """``run`` skips the interpreter's teardown (``os._exit``), never what the teardown
    would have done that anyone can see: atexit handlers (the inference log's writer
    flushes there) and buffered output."""
    marker = tmp_path / "flushed"
    body = (
        "import atexit, pathlib\n"
        f"atexit.register(lambda: pathlib.Path({str(marker)!r}).write_text('yes'))\n"
        "print('buffered before the command', end='')"
    )
    proc = _run_script(body, "--version")
    assert proc.returncode == 0, proc.stderr
    assert marker.read_text() == "yes"
    assert proc.stdout.startswith("buffered before the command")
    assert "mlx" in proc.stdout


def test_the_console_script_keeps_every_exit_code() -> None:
    unknown = _run_script("", "no-such-command")
    assert unknown.returncode == 1 and "No such command" in unknown.stderr
    for raised, code, stderr in (("'went wrong'", 1, "went wrong"), ("3", 3, ""), ("None", 0, "")):
        body = (
            f"import cli.app as app\ndef main():\n    raise SystemExit({raised})\napp.main = main"
        )
        proc = _run_script(body)
        assert proc.returncode == code, (raised, proc)
        assert stderr in proc.stderr
