import re
from pathlib import Path

import pytest

from jobsite.settings import LEVER_PRODUCTION_URL, ConfigError, load_settings


def test_defaults_use_the_sandbox_and_embedded_redis(tmp_path: Path) -> None:
    s = load_settings({"JOBSITE_DATA_DIR": str(tmp_path)})
    assert s.uses_sandbox
    assert s.redis_url is None
    assert s.lever_base_url == "http://127.0.0.1:8001/v1"
    assert s.port == 8000
    assert s.catalog_fresh_s == 300
    assert s.apply_rate_per_s == 2.0
    assert s.secret_key
    assert s.secret_key == load_settings({"JOBSITE_DATA_DIR": str(tmp_path)}).secret_key


def test_redis_memory_sizes_read_as_redis_conf_writes_them(tmp_path: Path) -> None:
    def maxmemory(raw: str | None) -> int:
        env = {"JOBSITE_DATA_DIR": str(tmp_path), **({"JOBSITE_REDIS_MAXMEMORY": raw} if raw else {})}
        return load_settings(env).redis_maxmemory

    assert maxmemory(None) == 2**30
    assert maxmemory("2GB") == 2 * 2**30
    assert maxmemory("512mb") == 512 * 2**20
    assert maxmemory("100m") == 100_000_000
    assert maxmemory("20000000") == 20_000_000
    s = load_settings({"JOBSITE_DATA_DIR": str(tmp_path)})
    assert s.redis_high_water == 0.8
    assert s.spool_drain_s == 60


def test_a_key_means_production_lever_and_never_shows_in_repr(tmp_path: Path) -> None:
    s = load_settings({"LEVER_API_KEY": "sk_live_secret", "JOBSITE_DATA_DIR": str(tmp_path)})
    assert not s.uses_sandbox
    assert s.lever_base_url == LEVER_PRODUCTION_URL
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
    assert str(e.value).startswith(name)
    assert value in str(e.value)


def test_cli_reports_bad_configuration_in_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "jobsite", "worker"],
        capture_output=True,
        text=True,
        env={"JOBSITE_PORT": "x", "JOBSITE_DATA_DIR": str(tmp_path), "PATH": "/usr/bin"},
        timeout=30,
    )
    assert out.returncode != 0
    assert "JOBSITE_PORT must be a whole number" in out.stderr
    assert "Traceback" not in out.stderr


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
    assert "secret_key" in str(e.value)
    assert "JOBSITE_SECRET_KEY" in str(e.value)
    assert load_settings({"JOBSITE_DATA_DIR": str(data), "JOBSITE_SECRET_KEY": "x" * 40}).secret_key == "x" * 40


MAIL = {"JOBSITE_PUBLIC_URL": "https://careers.acme.example", "JOBSITE_MAIL_ON_UNFIXED_PYTHON": "1"}  # see test_mail.py


@pytest.mark.parametrize(
    ("url", "host", "port", "security", "user", "password", "timeout_s"),
    [
        ("smtp://127.0.0.1:2525", "127.0.0.1", 2525, "none", None, None, 30.0),
        ("smtp://relay.internal", "relay.internal", 25, "none", None, None, 30.0),
        (
            "smtp://jobs%40acme.example:p%40ss%3Aw@mail.example:587?starttls=1",
            "mail.example",
            587,
            "starttls",
            "jobs@acme.example",
            "p@ss:w",
            30.0,
        ),
        ("smtp://u:pw@mail.example?starttls=true&timeout_s=5", "mail.example", 587, "starttls", "u", "pw", 5.0),
        ("smtps://u:pw@mail.example", "mail.example", 465, "tls", "u", "pw", 30.0),
    ],
)
def test_the_smtp_url_says_where_and_how_to_send(
    tmp_path: Path,
    url: str,
    host: str,
    port: int,
    security: str,
    user: str | None,
    password: str | None,
    timeout_s: float,
) -> None:
    s = load_settings({**MAIL, "JOBSITE_SMTP_URL": url, "JOBSITE_DATA_DIR": str(tmp_path)})
    assert s.smtp is not None
    assert (s.smtp.host, s.smtp.port, s.smtp.security, s.smtp.username, s.smtp.password, s.smtp.timeout_s) == (
        host,
        port,
        security,
        user,
        password,
        timeout_s,
    )
    assert password is None or password not in repr(s)


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://mail.example", "must be an smtp:// or smtps:// URL"),
        ("smtp://", "must be an smtp:// or smtps:// URL"),
        ("smtp://u:secret@mail.example:port", "malformed port"),
        ("smtp://mail.example?tls=1", "knows the parameters"),
        ("smtp://mail.example?starttls=maybe", "starttls=1"),
        ("smtps://u:secret@mail.example?starttls=1", "starttls=1"),
        ("smtp://u:secret@mail.example", "unencrypted"),
        ("smtp://u@mail.example?starttls=1", "without a password"),
        ("smtp://mail.example?timeout_s=0", "timeout_s must be"),
    ],
)
def test_a_malformed_smtp_url_names_the_variable_and_hides_the_password(tmp_path: Path, url: str, said: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings({**MAIL, "JOBSITE_SMTP_URL": url, "JOBSITE_DATA_DIR": str(tmp_path)})
    assert str(e.value).startswith("JOBSITE_SMTP_URL")
    assert said in str(e.value)
    assert "secret" not in str(e.value)


def test_mail_needs_the_public_url_and_sends_from_the_company(tmp_path: Path) -> None:
    env = {"JOBSITE_SMTP_URL": "smtp://127.0.0.1", "JOBSITE_DATA_DIR": str(tmp_path)}
    with pytest.raises(ConfigError, match=r"^JOBSITE_SMTP_URL needs JOBSITE_PUBLIC_URL"):
        load_settings(env)
    s = load_settings({**env, **MAIL, "JOBSITE_COMPANY_NAME": "Smith, Jones & Co."})
    assert s.mail_from == '"Smith, Jones & Co." <no-reply@careers.acme.example>'
    s = load_settings({**env, **MAIL, "JOBSITE_MAIL_FROM": "Acme careers <jobs@acme.example>"})
    assert s.mail_from == "Acme careers <jobs@acme.example>"
    for bad in ("jobs", "Acme <jobs@>", "jobs@acme"):
        with pytest.raises(ConfigError, match=r"^JOBSITE_MAIL_FROM must be an email address"):
            load_settings({**env, **MAIL, "JOBSITE_MAIL_FROM": bad})
    assert load_settings({"JOBSITE_DATA_DIR": str(tmp_path)}).smtp is None


def test_levers_confirmation_email_is_off_unless_asked(tmp_path: Path) -> None:
    assert load_settings({"JOBSITE_DATA_DIR": str(tmp_path)}).lever_confirmation_email is False
    on = {"JOBSITE_LEVER_CONFIRMATION_EMAIL": "true", "JOBSITE_DATA_DIR": str(tmp_path)}
    assert load_settings(on).lever_confirmation_email is True
    with pytest.raises(ConfigError, match=r"^JOBSITE_LEVER_CONFIRMATION_EMAIL must be true or false"):
        load_settings({**on, "JOBSITE_LEVER_CONFIRMATION_EMAIL": "sometimes"})


def test_the_low_water_mark_follows_the_high_one_and_must_stay_below_it(tmp_path: Path) -> None:
    env = {"JOBSITE_DATA_DIR": str(tmp_path)}
    assert load_settings(env).redis_low_water == pytest.approx(0.6)
    assert load_settings({**env, "JOBSITE_REDIS_HIGH_WATER": "0.5"}).redis_low_water == pytest.approx(0.375)
    with pytest.raises(ConfigError, match="JOBSITE_REDIS_LOW_WATER"):
        load_settings({**env, "JOBSITE_REDIS_LOW_WATER": "0.9"})


def test_sourcing_with_a_real_key_names_the_perform_as_variable(tmp_path: Path) -> None:
    env = {"JOBSITE_DATA_DIR": str(tmp_path)}
    real = {**env, "LEVER_API_KEY": "k"}
    assert load_settings(env).sourcing
    assert not load_settings(real).sourcing
    with pytest.raises(ConfigError, match=r"^JOBSITE_LEVER_PERFORM_AS must name the Lever user id"):
        load_settings({**real, "JOBSITE_SOURCING": "on"})
    with pytest.raises(ConfigError, match=r"^JOBSITE_LEVER_PERFORM_AS must be a Lever user id"):
        load_settings({**env, "JOBSITE_LEVER_PERFORM_AS": "a/b"})
    s = load_settings({**real, "JOBSITE_SOURCING": "on", "JOBSITE_LEVER_PERFORM_AS": "5f1e-42"})
    assert s.sourcing
    assert s.lever_perform_as == "5f1e-42"


def test_the_log_level_is_a_setting_that_names_its_variable(tmp_path: Path) -> None:
    env = {"JOBSITE_DATA_DIR": str(tmp_path)}
    assert load_settings(env).log_level == "INFO"
    assert load_settings({**env, "JOBSITE_LOG_LEVEL": "DEBUG"}).log_level == "DEBUG"
    with pytest.raises(ConfigError, match=r"^JOBSITE_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR"):
        load_settings({**env, "JOBSITE_LOG_LEVEL": "LOUD"})


def test_every_variable_jobsite_reads_is_in_the_readmes_configuration_table() -> None:
    """The README's table is where operators look: a setting read anywhere in jobsite/ (settings.py reads them all)
    but missing from the table is one nobody can find."""
    root = Path(__file__).resolve().parent.parent
    read = set()
    for path in (root / "jobsite").rglob("*.py"):
        if "sandbox" not in path.parts:
            read |= set(re.findall(r"""["']((?:JOBSITE|LEVER|REDIS)_[A-Z0-9_]+)["']""", path.read_text()))
    readme = (root / "README.md").read_text()
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    documented = {
        name
        for row in section.splitlines()
        if row.startswith("| `")
        for name in re.findall(r"`((?:JOBSITE|LEVER|REDIS)_[A-Z0-9_]+)`", row.split(" | ", 1)[0])
    }
    assert read - documented == set(), "settings missing from the README's Configuration table"
