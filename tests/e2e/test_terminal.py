"""The terminal, as Terraform users expect it: colour on a TTY only (NO_COLOR and
--no-color turn it off), and a heartbeat on anything slow."""

from __future__ import annotations

import os
import pty
import subprocess
from pathlib import Path

from tests.conftest import BASIC, MLX, REPO, run_mlx, write_spec

ESC = "\033["


def _on_a_tty(args: list[str], cwd: Path, **env: str) -> str:
    """Run mlx with its stdout and stderr on a pseudo-terminal; what it printed."""
    leader, follower = pty.openpty()
    full = {**os.environ, "PYTHONPATH": str(REPO), "MLX_ACTOR": "tester", **env}
    if "NO_COLOR" not in env:
        full.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [str(MLX), *args], cwd=cwd, env=full, stdout=follower, stderr=follower, close_fds=True
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(leader)
    return b"".join(chunks).decode(errors="replace")


def test_plans_are_coloured_on_a_terminal_and_plain_elsewhere(basic_spec: Path) -> None:
    tty = _on_a_tty(["plan"], basic_spec)
    assert f"{ESC}32m+{ESC}0m datasets.train" in tty, tty
    assert f"{ESC}1mPlan:{ESC}0m" in tty
    assert ESC not in _on_a_tty(["plan"], basic_spec, NO_COLOR="1")
    assert ESC not in _on_a_tty(["plan", "--no-color"], basic_spec)
    piped = run_mlx(["plan"], basic_spec)
    assert ESC not in piped.out and "+ datasets.train" in piped.out


def test_a_slow_apply_prints_a_heartbeat(tmp_path: Path) -> None:
    files = dict(BASIC)
    files["providers.yaml"] = """
        providers:
          slow:
            type: python
            factory: tests.support.fake_providers:SlowProvider
            config: {delay: 1.0}
    """
    files["models.yaml"] = files["models.yaml"].replace(
        "owner: team-ml", "owner: team-ml\n            provider: slow"
    )
    spec = write_spec(tmp_path / "spec", files)
    result = run_mlx(["apply", "--yes"], spec, env={"MLX_HEARTBEAT_S": "0.2"})
    assert result.code == 0, result
    assert "models.fraud: Still creating... [0s elapsed]" in result.out, result.out
    assert "datasets.train: Still" not in result.out  # quick ones stay quiet
