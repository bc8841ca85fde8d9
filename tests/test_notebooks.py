"""The worked examples in notebooks/ run to completion and give their results."""
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_linear_regression_demo_fits():
    out = subprocess.run([sys.executable, str(ROOT / "notebooks" / "linear_regression.py")],
                         capture_output=True, text=True, timeout=600, check=True).stdout
    match = re.search(r"Loss ([0-9.]+), \|w-w\*\| = ([0-9.]+)", out)
    assert match, out
    loss, error = float(match.group(1)), float(match.group(2))
    assert loss < 1e-4 and error < 1e-2, out
