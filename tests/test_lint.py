"""The code passes the project's lint (pyproject's [tool.ruff])."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "jobsite", "tests", "bench", "wsgi.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_format() -> None:
    """One layout for every file (ruff format, pyproject's line length), so a diff shows what changed, not how it was
    typed."""
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "jobsite", "tests", "bench", "wsgi.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy() -> None:
    done = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
