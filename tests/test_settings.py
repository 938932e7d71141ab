from pathlib import Path

import pytest

from jobsite.settings import LEVER_PRODUCTION_URL, ConfigError, load_settings


def test_defaults_use_the_sandbox_and_embedded_redis(tmp_path: Path) -> None:
    s = load_settings({"JOBSITE_DATA_DIR": str(tmp_path)})
    assert s.uses_sandbox and s.redis_url is None
    assert s.lever_base_url == "http://127.0.0.1:8001/v1"
    assert s.port == 8000 and s.catalog_fresh_s == 300 and s.apply_rate_per_s == 2.0
    assert s.secret_key and s.secret_key == load_settings({"JOBSITE_DATA_DIR": str(tmp_path)}).secret_key


def test_a_key_means_production_lever_and_never_shows_in_repr(tmp_path: Path) -> None:
    s = load_settings({"LEVER_API_KEY": "sk_live_secret", "JOBSITE_DATA_DIR": str(tmp_path)})
    assert not s.uses_sandbox and s.lever_base_url == LEVER_PRODUCTION_URL
    assert "sk_live_secret" not in repr(s)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("JOBSITE_PORT", "eighty"),
        ("JOBSITE_PORT", "70000"),
        ("REDIS_URL", "localhost:6379"),
        ("LEVER_BASE_URL", "http://api.lever.co/v1"),
        ("LEVER_BASE_URL", "not a url"),
        ("JOBSITE_REDIS_FSYNC", "sometimes"),
        ("JOBSITE_CATALOG_FRESH_S", "-5"),
        ("JOBSITE_APPLY_RATE_PER_S", "fast"),
    ],
)
def test_a_bad_value_names_its_variable(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings({name: value, "JOBSITE_DATA_DIR": str(tmp_path)})
    assert str(e.value).startswith(name) and value in str(e.value)


def test_cli_reports_bad_configuration_in_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "jobsite", "worker"], capture_output=True, text=True,
                         env={"JOBSITE_PORT": "x", "JOBSITE_DATA_DIR": str(tmp_path), "PATH": "/usr/bin"}, timeout=30)
    assert out.returncode != 0
    assert "JOBSITE_PORT must be a whole number" in out.stderr and "Traceback" not in out.stderr


def test_the_data_dir_and_its_secret_are_private_and_an_empty_secret_stops_start_up(tmp_path: Path) -> None:
    """Issue 13, item 8: 0700 and 0600, and a secret file gone empty is refused rather than signed with."""
    data = tmp_path / "data"
    secret = load_settings({"JOBSITE_DATA_DIR": str(data)}).secret_key
    assert len(secret) >= 32
    assert data.stat().st_mode & 0o777 == 0o700
    assert (data / "secret_key").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in data.iterdir()] == ["secret_key"]  # no temporary file left behind
    (data / "secret_key").write_text("")
    with pytest.raises(ConfigError) as e:
        load_settings({"JOBSITE_DATA_DIR": str(data)})
    assert "secret_key" in str(e.value) and "JOBSITE_SECRET_KEY" in str(e.value)
    assert load_settings({"JOBSITE_DATA_DIR": str(data), "JOBSITE_SECRET_KEY": "x" * 40}).secret_key == "x" * 40
