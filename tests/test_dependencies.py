"""Every import is a declared dependency and every declared dependency is used, checked by deptry for the two sets
apart: the runtime set against jobsite/ (a user's install has nothing else), the test extra against tests/ and bench/.
A runtime crash once hid behind a green suite because the test extra installed a package the runtime needed."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
DEPTRY = [sys.executable, "-m", "deptry"]
# The test extra's programs and plugins: run or loaded by pytest, never imported.
TOOLS = ["ruff", "mypy", "types-requests", "deptry", "pytest-xdist", "import-linter"]


def deptry(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DEPTRY, *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def names(requirements: list[str]) -> list[str]:
    return [Requirement(r).name for r in requirements]


def test_the_runtime_set_is_what_jobsite_imports() -> None:
    """No undeclared (DEP001), transitive (DEP003) or unused (DEP002) runtime dependency, and no test-only package
    imported by the product (DEP004); the exceptions used without an import are listed in pyproject.toml."""
    done = deptry("jobsite")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_test_set_is_what_tests_and_benches_import() -> None:
    runtime = names(PROJECT["dependencies"])
    done = deptry(
        "tests",
        "bench",
        "--exclude",
        r"\.venv",
        "-kf",
        "jobsite",
        "-kf",
        "tests",
        "-kf",
        "bench",
        "--pep621-dev-dependency-groups",
        "",
        # the runtime set is checked for use against jobsite/ above
        "--per-rule-ignores",
        "DEP002=" + "|".join(runtime + TOOLS),
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("tool", TOOLS)
def test_every_listed_tool_is_in_the_test_extra(tool: str) -> None:
    assert tool in names(PROJECT["optional-dependencies"]["test"])
