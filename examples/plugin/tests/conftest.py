"""Run the plugin's tests from a checkout too: ``src/`` on the path when it is not installed."""

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("mlx_dirstore") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
