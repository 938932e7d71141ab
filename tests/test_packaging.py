"""The built wheel carries templates/, static/ and the compiled translations (built without warnings), so an installed
jobsite renders pages, in every language, from any directory."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_renders_pages_from_any_directory(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
    )
    assert "Warning" not in built.stdout + built.stderr  # a quiet build: no setuptools warnings about our layout
    wheel = next(tmp_path.glob("jobsite-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "jobsite/templates/base.html" in names
    assert "jobsite/static/site.css" in names
    assert "jobsite/templates/candidates/apply.html" in names
    assert {f"jobsite/translations/{lang}/LC_MESSAGES/messages.mo" for lang in ("de", "fr")} <= set(names)
    installed = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(installed)
    packages = sorted(
        {
            name.rsplit("/", 1)[0].replace("/", ".")
            for name in names
            if name.endswith("/__init__.py") and name.startswith("jobsite/")
        }
    )
    assert {
        "jobsite.lever",
        "jobsite.postings",
        "jobsite.records",
        "jobsite.intake",
        "jobsite.delivery",
        "jobsite.worker",
        "jobsite.followup",
        "jobsite.console",
        "jobsite.web",
        "jobsite.sandbox",
    } <= set(packages)
    script = (
        f"import importlib; [importlib.import_module(p) for p in {packages!r}]\n"  # every subpackage, as installed
        "import jobsite; from jobsite.web.app import create_app\n"
        f"assert jobsite.__file__.startswith({str(installed)!r}), jobsite.__file__\n"
        f"c = create_app(data_dir={str(tmp_path / 'data')!r}).test_client()\n"
        "r = c.get('/no-such-page'); assert r.status_code == 404 and b'We could not find that page' in r.data\n"
        "r = c.get('/no-such-page?lang=de'); assert 'Diese Seite gibt es nicht' in r.text, r.text\n"
        "assert c.get('/static/site.css').status_code == 200\n"
    )
    env = {**os.environ, "PYTHONPATH": str(installed)}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
