from pathlib import Path

import pytest

from jobsite.settings import LEVER_PRODUCTION_URL, ConfigError, load_settings


def test_defaults_use_the_sandbox_and_embedded_redis(tmp_path: Path) -> None:
    s = load_settings({"JOBSITE_DATA_DIR": str(tmp_path)})
    assert s.uses_sandbox and s.redis_url is None
    assert s.lever_base_url == "http://127.0.0.1:8001/v1"
    assert s.port == 8000 and s.catalog_fresh_s == 300 and s.apply_rate_per_s == 2.0
    assert s.secret_key and s.secret_key == load_settings({"JOBSITE_DATA_DIR": str(tmp_path)}).secret_key


def test_redis_memory_sizes_read_as_redis_conf_writes_them(tmp_path: Path) -> None:
    def maxmemory(raw: str | None) -> int:
        env = {"JOBSITE_DATA_DIR": str(tmp_path), **({"JOBSITE_REDIS_MAXMEMORY": raw} if raw else {})}
        return load_settings(env).redis_maxmemory

    assert maxmemory(None) == 2**30 and maxmemory("2GB") == 2 * 2**30 and maxmemory("512mb") == 512 * 2**20
    assert maxmemory("100m") == 100_000_000 and maxmemory("20000000") == 20_000_000
    s = load_settings({"JOBSITE_DATA_DIR": str(tmp_path)})
    assert s.redis_high_water == 0.8 and s.spool_drain_s == 60


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
        ("JOBSITE_REDIS_MAXMEMORY", "lots"),
        ("JOBSITE_REDIS_MAXMEMORY", "1tb"),
        ("JOBSITE_REDIS_MAXMEMORY", "1mb"),
        ("JOBSITE_REDIS_HIGH_WATER", "0.99"),
        ("JOBSITE_SPOOL_DRAIN_S", "0"),
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
