"""All configuration, read once from the environment.

Every setting has a documented default, so an empty environment runs the site on its embedded parts: an embedded
redis-server in the data directory and the Lever sandbox. A bad value stops start-up with a one-line error that names
the variable (`ConfigError`).
"""

from __future__ import annotations

import builtins
import email.policy
import ipaddress
import os
import secrets
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from email.utils import formataddr, parseaddr
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from . import keyspace
from .colours import AA_CONTRAST, INK, PAGE_BACKGROUND, WHITE, contrast
from .disk import durable_write, private_dir

T = TypeVar("T")

# In a checkout the templates, static files and translations sit beside the package; a wheel carries them inside it.
SHARE_DIR = (
    Path(__file__).resolve().parent
    if (Path(__file__).resolve().parent / "templates").is_dir()
    else Path(__file__).resolve().parent.parent
)

LEVER_PRODUCTION_URL = "https://api.lever.co/v1"
SANDBOX_API_KEY = "sandbox-key"


# The tags a delivered application's opportunity can get, each prefixed with JOBSITE_TAG_PREFIX: "careers site",
# "source: <source>", "campaign: <utm_campaign>", "applied during Lever maintenance".
TAG_KINDS: tuple[str, ...] = ("site", "source", "campaign", "maintenance")


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Brand:
    """How the careers site shows the company, without a fork: files are checked to exist and colours to be readable
    (WCAG AA, 4.5:1) at start-up, so a typo or an unreadable button stops the site before a candidate sees it."""

    logo: Path | None = None
    favicon: Path | None = None
    primary_colour: str = "#2454d6"
    accent_colour: str = "#e8eefc"
    intro: str = ""
    about_markdown: str = ""
    footer_links: tuple[tuple[str, str], ...] = ()
    privacy_url: str | None = None
    templates_dir: Path | None = None


@dataclass(frozen=True)
class Smtp:
    """Where the candidates' confirmation emails go: `JOBSITE_SMTP_URL`, parsed and checked at start-up.

    `smtp://[user:password@]host[:port][?starttls=1]` (port 25, or 587 with STARTTLS) or
    `smtps://[user:password@]host[:port]` (TLS from the first byte, port 465); user and password percent-encoded.
    """

    host: str
    port: int
    security: str  # "tls" (smtps://), "starttls" or "none"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_s: float = 30.0
    per_second: int = 10  # JOBSITE_MAIL_PER_SECOND: at most this many emails in any second, all workers together


MIN_SECRET_CHARS = 16
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOCAL_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")  # served without JOBSITE_PUBLIC_URL by default
IMAGE_SUFFIXES = (".png", ".svg", ".jpg", ".jpeg", ".webp", ".gif", ".ico")


@dataclass(frozen=True)
class RedisSentinel:
    """Where to find the primary through Redis Sentinel: the Sentinels' addresses, the name they monitor it under, and
    the passwords of the primary (and replicas) and of the Sentinels, if any."""

    addresses: tuple[tuple[str, int], ...]
    master: str
    password: str | None = field(default=None, repr=False)
    sentinel_password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Settings:
    """The site's configuration. Units are in the names: `_s` seconds, `_mb` mebibytes, `_per_s` per second."""

    lever_api_key: str | None = field(repr=False)
    lever_base_url: str
    sandbox_port: int
    redis_url: str | None
    redis_port: int | None
    redis_fsync: str
    redis_maxmemory: int  # bytes; the embedded server's maxmemory (an external Redis has its own)
    redis_high_water: float  # fraction of Redis's maxmemory above which new applications are refused
    data_dir: Path
    secret_key: str = field(repr=False)
    company_name: str
    port: int
    web_workers: int
    public_url: str | None
    allowed_hosts: tuple[str, ...]  # Host headers served when public_url is unset (which then builds URLs from it)
    metrics_token: str | None = field(repr=False)
    proxy_count: int
    # One address's open connections to one web process (0: no cap; off behind a proxy, which is then the one
    # address), and how long a request's body may take to arrive: one address held every connection with 1,005
    # slow bodies.
    connections_per_ip: int
    body_deadline_s: float
    catalog_fresh_s: int
    catalog_keep_s: int
    lever_connect_timeout_s: float
    lever_read_timeout_s: float
    apply_rate_per_s: float
    lever_rate_per_s: float
    pacing_margin_s: float
    retry_window_s: int
    probe_cap_s: float
    probe_interval_s: float
    probe_read_retry_s: int
    delivery_lease_s: int
    upkeep_interval_s: int
    log_level: str  # the root logger's level: DEBUG, INFO, WARNING or ERROR
    spool_drain_s: int
    max_file_mb: int
    max_request_mb: int
    submissions_per_ip_per_hour: int
    retention_days: int
    application_source: str
    embed_origins: tuple[str, ...] | None = None  # None: any site may embed (CORS *, frame-ancestors *)
    api_client_per_hour: int = 1000
    signups_per_hour: int = 300  # talent-community sign-ups the whole site takes per clock hour, beside per address
    brand: Brand = field(default_factory=Brand)
    smtp: Smtp | None = None  # unset: no confirmation email
    mail_from: str = ""  # the From of confirmation emails
    mail_off: str = ""  # why confirmation emails are off although JOBSITE_SMTP_URL is set (start-up says it)
    lever_confirmation_email: bool = False  # ask Lever to send its own confirmation too (Lever's default: no)
    tag_prefix: str = "Acme Robotics"  # Lever advises prefixing an integration's tags with the company's name
    tags: tuple[str, ...] = TAG_KINDS  # which tags a delivered application's opportunity gets (TAG_KINDS)
    tag_every_opportunity: bool = False  # tag every opportunity of the contact, not only the one applied for
    pipeline_sync_s: int = 300  # how often the pipeline is synced with Lever (incremental, by tag)
    lever_webhook_token: str | None = None  # Lever's webhook signing token; unset: /webhooks/lever answers 404
    webhook_max_age_s: int = 300  # a webhook triggered longer ago than this is refused (stale or replayed)
    # Abuse limits (issue 21): one address's files per hour; the memory mark above which only small applications
    # are taken; failed console sign-ins from one address per hour, whatever the accounts.
    submission_mb_per_ip_per_hour: int = 40
    redis_low_water: float = 0.6  # default: 3/4 of redis_high_water
    # JOBSITE_REDIS_PREFIX: every Redis key starts with it, RQ's too (`<prefix>rq:`); read once at import (keyspace)
    redis_prefix: str = ""
    signin_failures_per_ip_per_hour: int = 300
    reconcile_settle_s: float = 120.0  # an apply that got no answer is not sent again before this (Lever may be
    # still processing it): longer than Lever's slowest answers
    # Sourcing (the talent community and event capture): on by default with the sandbox, asked for with a real key,
    # which then needs the Lever user that owns what nobody in particular sourced (a talent-community sign-up).
    sourcing: bool = False
    lever_perform_as: str | None = None
    # REDIS_SENTINELS: the Redis is the primary that these Sentinels name (instead of REDIS_URL), followed through
    # failovers by every process.
    redis_sentinel: RedisSentinel | None = None
    # A 202 only once WAIT has the application on this many replicas within redis_replica_wait_ms; else it is spooled
    # too (item 3 of issue 30: a failover to an asynchronous replica must not lose a receipted application).
    redis_min_replicas: int = 0
    redis_replica_wait_ms: int = 1000
    # JOBSITE_FILES_URL: s3://bucket/prefix of an S3-compatible store for the applications' files, instead of Redis
    files_url: str | None = None
    # Job alerts (alerts/): instant alerts are gathered this long before they go, so a burst of new postings makes
    # one email.
    alert_gather_s: int = 300

    @property
    def uses_sandbox(self) -> bool:
        """True when no Lever key is configured: the site talks to the Lever sandbox."""
        return self.lever_api_key is None

    @property
    def api_key(self) -> str:
        """The key sent to Lever (the sandbox accepts a fixed one)."""
        return self.lever_api_key or SANDBOX_API_KEY

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    @property
    def lever_app_url(self) -> str:
        """Lever's web app beside its API, for the console's "Open in Lever" links: api.lever.co -> hire.lever.co,
        api.eu.lever.co -> hire.eu.lever.co; another host (the sandbox) keeps its own address."""
        parts = urlsplit(self.lever_base_url)
        host = "hire." + parts.netloc.removeprefix("api.") if parts.netloc.startswith("api.") else parts.netloc
        return f"{parts.scheme}://{host}"

    def path(self, *parts: str) -> Path:
        """A path inside the data directory, its parent created."""
        p = self.data_dir.joinpath(*parts)
        private_dir(p.parent)
        return p


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build `Settings` from environment variables (default `os.environ`); `overrides` win (tests use them)."""
    env = os.environ if environ is None else environ
    r = _Reader(env)
    api_key = r.str("LEVER_API_KEY", None)
    sandbox_port = r.int("JOBSITE_SANDBOX_PORT", 8001, lo=1, hi=65535)
    default_base = LEVER_PRODUCTION_URL if api_key else f"http://127.0.0.1:{sandbox_port}/v1"
    data_dir = Path(r.str("JOBSITE_DATA_DIR", "jobsite-data")).expanduser().absolute()
    company = r.str("JOBSITE_COMPANY_NAME", "Acme Robotics")
    values: dict[str, Any] = dict(
        lever_api_key=api_key,
        lever_base_url=r.get("LEVER_BASE_URL", default_base, _lever_url).rstrip("/"),
        sandbox_port=sandbox_port,
        redis_url=r.get("REDIS_URL", None, _redis_url),
        redis_port=r.int("JOBSITE_REDIS_PORT", None, lo=1, hi=65535),
        redis_fsync=r.choice("JOBSITE_REDIS_FSYNC", "always", ("everysec", "always")),
        redis_maxmemory=r.get("JOBSITE_REDIS_MAXMEMORY", 2**30, _memory),
        redis_high_water=r.float("JOBSITE_REDIS_HIGH_WATER", 0.8, lo=0.1, hi=0.95),
        redis_prefix=_redis_prefix(env),
        data_dir=data_dir,
        secret_key=r.str("JOBSITE_SECRET_KEY", None) or "",
        company_name=company,
        port=r.int("JOBSITE_PORT", 8000, lo=1, hi=65535),
        web_workers=r.int("JOBSITE_WEB_WORKERS", 2, lo=1, hi=64),
        public_url=r.get("JOBSITE_PUBLIC_URL", None, _http_url),
        allowed_hosts=r.get("JOBSITE_ALLOWED_HOSTS", LOCAL_HOSTS, _hosts),
        metrics_token=r.get("JOBSITE_METRICS_TOKEN", None, _token),
        proxy_count=r.int("JOBSITE_PROXY_COUNT", 0, lo=0, hi=5),
        connections_per_ip=r.int("JOBSITE_CONNECTIONS_PER_IP", 100, lo=0),
        body_deadline_s=r.float("JOBSITE_BODY_DEADLINE_S", 120.0, lo=1.0),
        catalog_fresh_s=r.int("JOBSITE_CATALOG_FRESH_S", 300, lo=1),
        catalog_keep_s=r.int("JOBSITE_CATALOG_KEEP_S", 14 * 86400, lo=60),
        lever_connect_timeout_s=r.float("JOBSITE_LEVER_CONNECT_TIMEOUT_S", 3.05, lo=0.1),
        lever_read_timeout_s=r.float("JOBSITE_LEVER_READ_TIMEOUT_S", 20.0, lo=0.1),
        apply_rate_per_s=r.float("JOBSITE_APPLY_RATE_PER_S", 2.0, lo=0.01),
        lever_rate_per_s=r.float("JOBSITE_LEVER_RATE_PER_S", 10.0, lo=0.01),
        pacing_margin_s=r.int("JOBSITE_PACING_MARGIN_MS", 30, lo=0, hi=1000) / 1000,
        retry_window_s=r.int("JOBSITE_RETRY_WINDOW_S", 72 * 3600, lo=1),
        probe_cap_s=r.float("JOBSITE_PROBE_CAP_S", 30.0, lo=0.1),
        probe_interval_s=r.float("JOBSITE_PROBE_INTERVAL_S", 0.5, lo=0.5),
        probe_read_retry_s=r.int("JOBSITE_PROBE_READ_RETRY_S", 3600, lo=1),
        delivery_lease_s=r.int("JOBSITE_DELIVERY_LEASE_S", 60, lo=2),
        upkeep_interval_s=r.int("JOBSITE_UPKEEP_INTERVAL_S", 5, lo=1, hi=60),
        log_level=r.choice("JOBSITE_LOG_LEVEL", "INFO", LOG_LEVELS),
        spool_drain_s=r.int("JOBSITE_SPOOL_DRAIN_S", 60, lo=1, hi=3600),
        max_file_mb=r.int("JOBSITE_MAX_FILE_MB", 10, lo=1, hi=30),
        max_request_mb=r.int("JOBSITE_MAX_REQUEST_MB", 25, lo=1, hi=100),
        submissions_per_ip_per_hour=r.int("JOBSITE_SUBMISSIONS_PER_IP_PER_HOUR", 30, lo=1),
        retention_days=r.int("JOBSITE_RETENTION_DAYS", 30, lo=1),
        application_source=r.str("JOBSITE_APPLICATION_SOURCE", f"{company} careers site"),
        embed_origins=r.get("JOBSITE_EMBED_ORIGINS", None, _origins),
        api_client_per_hour=r.int("JOBSITE_API_CLIENT_PER_HOUR", 1000, lo=1),
        signups_per_hour=r.int("JOBSITE_SIGNUPS_PER_HOUR", 300, lo=1),
        brand=_brand(r),
        lever_confirmation_email=r.bool("JOBSITE_LEVER_CONFIRMATION_EMAIL", False),
        tag_prefix=r.str("JOBSITE_TAG_PREFIX", company),
        tags=r.get("JOBSITE_TAGS", TAG_KINDS, _tag_kinds),
        tag_every_opportunity=r.bool("JOBSITE_TAG_EVERY_OPPORTUNITY", False),
        pipeline_sync_s=r.int("JOBSITE_PIPELINE_SYNC_S", 300, lo=10),
        lever_webhook_token=r.str("LEVER_WEBHOOK_TOKEN", None),
        webhook_max_age_s=r.int("JOBSITE_WEBHOOK_MAX_AGE_S", 300, lo=10),
        submission_mb_per_ip_per_hour=r.int("JOBSITE_SUBMISSION_MB_PER_IP_PER_HOUR", 40, lo=1),
        redis_low_water=r.float(
            "JOBSITE_REDIS_LOW_WATER",
            0.75 * r.float("JOBSITE_REDIS_HIGH_WATER", 0.8, lo=0.1, hi=0.95),
            lo=0.05,
            hi=0.95,
        ),
        signin_failures_per_ip_per_hour=r.int("JOBSITE_SIGNIN_FAILURES_PER_IP_PER_HOUR", 300, lo=10),
        reconcile_settle_s=r.float("JOBSITE_RECONCILE_SETTLE_S", 120.0, lo=0),
        **_mail(r, company),
        **_sourcing(r, api_key),
        redis_sentinel=_sentinel(r),
        redis_min_replicas=r.int("JOBSITE_REDIS_MIN_REPLICAS", 0, lo=0, hi=16),
        redis_replica_wait_ms=r.int("JOBSITE_REDIS_REPLICA_WAIT_MS", 1000, lo=10, hi=10_000),
        files_url=r.get("JOBSITE_FILES_URL", None, _files_url),
        alert_gather_s=r.int("JOBSITE_ALERT_GATHER_S", 300, lo=1, hi=86400),
    )
    if values["redis_low_water"] >= values["redis_high_water"]:
        raise ConfigError(
            f"JOBSITE_REDIS_LOW_WATER ({values['redis_low_water']}) must be below "
            f"JOBSITE_REDIS_HIGH_WATER ({values['redis_high_water']})"
        )
    values.update(overrides)
    values["data_dir"] = Path(values["data_dir"]).absolute()
    if not values["secret_key"]:
        values["secret_key"] = _persistent_secret(Path(values["data_dir"]))
    return Settings(**values)


def _sourcing(r: _Reader, api_key: str | None) -> dict[str, Any]:
    """JOBSITE_SOURCING (default: on with the sandbox) and the Lever user id JOBSITE_LEVER_PERFORM_AS, required with a
    real Lever key: Create an opportunity must be performed as a user (with the sandbox, its first user)."""
    on = r.bool("JOBSITE_SOURCING", api_key is None)
    perform_as = r.get("JOBSITE_LEVER_PERFORM_AS", None, _lever_id)
    if on and api_key and not perform_as:
        raise ConfigError(
            "JOBSITE_LEVER_PERFORM_AS must name the Lever user id that owns talent-community sign-ups "
            "(List users in Lever's API gives it), or set JOBSITE_SOURCING=off"
        )
    return {"sourcing": on, "lever_perform_as": perform_as}


def _lever_id(name: str, raw: str) -> str:
    if not raw or not all(c.isalnum() or c == "-" for c in raw):
        raise ConfigError(f"{name} must be a Lever user id (letters, digits and dashes), not {raw!r}")
    return raw


def _tag_kinds(name: str, raw: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in raw.split(",") if k.strip())
    unknown = [k for k in kinds if k not in TAG_KINDS]
    if unknown:
        raise ConfigError(f"{name} lists {', '.join(unknown)}: it takes any of {', '.join(TAG_KINDS)}, comma-separated")
    return kinds


def _brand(r: _Reader) -> Brand:
    about = r.get("JOBSITE_BRAND_ABOUT_FILE", None, _file(()))
    return Brand(
        logo=r.get("JOBSITE_BRAND_LOGO", None, _file(IMAGE_SUFFIXES)),
        favicon=r.get("JOBSITE_BRAND_FAVICON", None, _file(IMAGE_SUFFIXES)),
        primary_colour=r.get(
            "JOBSITE_BRAND_PRIMARY_COLOUR",
            Brand.primary_colour,
            _colour(("white text", WHITE), ("the page background", PAGE_BACKGROUND)),
        ),
        accent_colour=r.get("JOBSITE_BRAND_ACCENT_COLOUR", Brand.accent_colour, _colour(("the text", INK))),
        intro=r.str("JOBSITE_BRAND_INTRO", ""),
        about_markdown=about.read_text(encoding="utf-8") if about else "",
        footer_links=r.get("JOBSITE_BRAND_FOOTER_LINKS", (), _links),
        privacy_url=r.get("JOBSITE_PRIVACY_URL", None, _http_url),
        templates_dir=r.get("JOBSITE_TEMPLATES_DIR", None, _directory),
    )


def _mail(r: _Reader, company: str) -> dict[str, Any]:
    """The confirmation email's settings. It links to the receipt page, and a worker has no request to take the
    site's address from: so a mail server needs the public URL, and the sender's address defaults to its host."""
    smtp = r.get("JOBSITE_SMTP_URL", None, _smtp_url)
    public_url = r.get("JOBSITE_PUBLIC_URL", None, _http_url)
    if smtp and not public_url:
        raise ConfigError("JOBSITE_SMTP_URL needs JOBSITE_PUBLIC_URL: the confirmation email links to the receipt page")
    host = urlsplit(public_url).hostname if public_url else "localhost"
    try:
        host = (host or "localhost").encode("idna").decode("ascii")  # an address's domain is ASCII
    except UnicodeError:
        raise ConfigError(f"JOBSITE_PUBLIC_URL has a host no email address can use: {public_url!r}") from None
    default_from = formataddr((company, f"no-reply@{host}"))
    mail_from = r.get("JOBSITE_MAIL_FROM", default_from, _mail_from)
    per_second = r.int("JOBSITE_MAIL_PER_SECOND", 10, lo=1, hi=10_000)
    if smtp:
        smtp = replace(smtp, per_second=per_second)
    unfixed = _unfixed_python() if smtp else ""
    if unfixed and not r.bool("JOBSITE_MAIL_ON_UNFIXED_PYTHON", False):
        return dict(smtp=None, mail_from=mail_from, mail_off=f"confirmation emails are off: {unfixed}")
    return dict(smtp=smtp, mail_from=mail_from)


def _unfixed_python() -> str:
    """Why this Python must not write emails with outside text in them, or "" when it may. Its email package
    decoded an encoded word carrying CR/LF into raw header lines when writing a message (CVE-2024-6923: a
    candidate's name added headers and a body of its own); the fix (3.11.10, 3.12.5, or a distribution's
    backport) came with the policy's `verify_generated_headers`, which is what is looked for."""
    if hasattr(email.policy.default, "verify_generated_headers"):
        return ""
    version = ".".join(map(str, sys.version_info[:3]))
    return (
        f"Python {version} lacks the fix for CVE-2024-6923 (header injection in the email package); use "
        "Python 3.11.10, 3.12.5 or later"
    )


def _mail_from(name: str, raw: str) -> str:
    _, address = parseaddr(raw)
    local, at, domain = address.rpartition("@")
    if not ((at and local and "." in domain) or domain == "localhost") or any(c in raw for c in "\r\n"):
        raise ConfigError(f"{name} must be an email address like 'Acme careers <jobs@acme.example>', not {raw!r}")
    return raw


def _smtp_url(name: str, raw: str) -> Smtp:
    parts = urlsplit(raw)
    shown = _without_password(parts)  # the password never reaches an error message or a log
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ConfigError(
            f"{name} must be an smtp:// or smtps:// URL such as smtp://user:password@mail.example:587"
            f"?starttls=1, not {shown!r}"
        )
    try:
        port = parts.port
        query = dict(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query)))
    except ValueError:
        raise ConfigError(f"{name} has a malformed port or query: {shown!r}") from None
    unknown = set(query) - {"starttls", "timeout_s"}
    if unknown:
        raise ConfigError(
            f"{name} knows the parameters starttls and timeout_s, not {', '.join(sorted(unknown))}: {shown!r}"
        )
    starttls = query.get("starttls", "0").lower()
    if starttls not in _TRUE + _FALSE or (parts.scheme == "smtps" and starttls in _TRUE):
        raise ConfigError(f"{name} takes starttls=1 or starttls=0 (and only with smtp://), not {shown!r}")
    security = "tls" if parts.scheme == "smtps" else "starttls" if starttls in _TRUE else "none"
    timeout_s = _number(float, "a number", 1, 300)(f"{name} timeout_s", query.get("timeout_s", "30"))
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if username and password is None:
        raise ConfigError(f"{name} names a user without a password (user:password@host): {shown!r}")
    if security == "none" and username and not _is_loopback(parts.hostname):
        raise ConfigError(
            f"{name} would send its password unencrypted to {parts.hostname}: use smtps:// or "
            f"?starttls=1, not {shown!r}"
        )
    default_port = {"tls": 465, "starttls": 587, "none": 25}[security]
    return Smtp(
        host=parts.hostname,
        port=port or default_port,
        security=security,
        username=username,
        password=password,
        timeout_s=timeout_s,
    )


def _without_password(parts: Any) -> str:
    if parts.password is None:
        return str(urlunsplit(parts))
    netloc = parts.netloc.rpartition("@")[2]
    return str(urlunsplit(parts._replace(netloc=f"{parts.username}:***@{netloc}")))


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _file(suffixes: tuple[str, ...]) -> Callable[[str, str], Path]:
    def parse(name: str, raw: str) -> Path:
        path = Path(raw).expanduser().absolute()
        if not path.is_file():
            raise ConfigError(f"{name} must name a readable file, not {raw!r}")
        if suffixes and path.suffix.lower() not in suffixes:
            raise ConfigError(f"{name} must be an image ({', '.join(suffixes)}), not {raw!r}")
        return path

    return parse


def _directory(name: str, raw: str) -> Path:
    path = Path(raw).expanduser().absolute()
    if not path.is_dir():
        raise ConfigError(f"{name} must name a directory, not {raw!r}")
    return path


def _links(name: str, raw: str) -> tuple[tuple[str, str], ...]:
    """`Label=https://...;Label=https://...`: a semicolon between links, since labels may hold commas."""
    links = []
    for item in filter(None, (part.strip() for part in raw.split(";"))):
        label, sep, url = (part.strip() for part in item.partition("="))
        if not sep or not label:
            raise ConfigError(f"{name} must be Label=URL pairs separated by ';', not {item!r}")
        links.append((label, _http_url(name, url)))
    return tuple(links)


def _colour(*against: tuple[str, str]) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = raw.lower()
        if len(value) == 4 and value.startswith("#"):
            value = "#" + "".join(c * 2 for c in value[1:])
        if len(value) != 7 or not value.startswith("#") or any(c not in "0123456789abcdef" for c in value[1:]):
            raise ConfigError(f"{name} must be a colour like #2454d6, not {raw!r}")
        for what, other in against:
            ratio = contrast(value, other)
            if ratio < AA_CONTRAST:
                raise ConfigError(
                    f"{name} {raw} is unreadable against {what} ({ratio:.2f}:1; WCAG AA needs {AA_CONTRAST}:1)"
                )
        return value

    return parse


def _persistent_secret(data_dir: Path) -> str:
    """A random secret kept in the data dir, so every process on this machine signs with the same key. It is
    written whole to a temporary file and linked into place, so no process ever reads it half-written or empty; an
    empty or short one (a copy gone wrong) stops start-up rather than signing with a guessable key."""
    path = private_dir(data_dir) / "secret_key"
    if not path.exists():
        tmp = data_dir / f".secret_key.{os.getpid()}"
        durable_write(tmp, secrets.token_urlsafe(32).encode())
        try:
            os.link(tmp, path)  # fails if another process got there first: then theirs is the key
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    secret = path.read_text().strip()
    if len(secret) < MIN_SECRET_CHARS:
        raise ConfigError(
            f"{path} holds no usable secret (under {MIN_SECRET_CHARS} characters): delete it to get a "
            "new one, or set JOBSITE_SECRET_KEY"
        )
    return secret


class _Reader:
    def __init__(self, env: Mapping[str, str]):
        self.env = env

    def get(self, name: str, default: T, parse: Callable[[str, str], T]) -> T:
        raw = self.env.get(name, "").strip()
        return parse(name, raw) if raw else default

    def str(self, name: str, default: Any) -> Any:
        return self.get(name, default, lambda _n, raw: raw)

    def int(self, name: builtins.str, default: Any, lo: builtins.int = 0, hi: builtins.int | None = None) -> Any:
        return self.get(name, default, _number(int, "a whole number", lo, hi))

    def float(
        self, name: builtins.str, default: builtins.float, lo: builtins.float = 0.0, hi: builtins.float | None = None
    ) -> builtins.float:
        return self.get(name, default, _number(float, "a number", lo, hi))

    def bool(self, name: builtins.str, default: builtins.bool) -> builtins.bool:
        def parse(n: builtins.str, raw: builtins.str) -> builtins.bool:
            if raw.lower() not in _TRUE + _FALSE:
                raise ConfigError(f"{n} must be true or false (1/0, yes/no, on/off), not {raw!r}")
            return raw.lower() in _TRUE

        return self.get(name, default, parse)

    def choice(self, name: builtins.str, default: builtins.str, options: tuple[builtins.str, ...]) -> builtins.str:
        def parse(n: builtins.str, raw: builtins.str) -> builtins.str:
            if raw not in options:
                raise ConfigError(f"{n} must be one of {', '.join(options)}, not {raw!r}")
            return raw

        return self.get(name, default, parse)


def _number(kind: type, what: str, lo: float, hi: float | None) -> Callable[[str, str], Any]:
    def parse(name: str, raw: str) -> Any:
        try:
            value = kind(raw)
        except ValueError:
            raise ConfigError(f"{name} must be {what}, not {raw!r}") from None
        if value < lo or (hi is not None and value > hi):
            bound = f"from {lo} to {hi}" if hi is not None else f"at least {lo}"
            raise ConfigError(f"{name} must be {bound}, not {raw!r}")
        return value

    return parse


MEMORY_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3}


def _memory(name: str, raw: str) -> int:
    """A size the way redis.conf writes it (`1gb`, `512mb`, `100m`, bytes): kb, mb, gb are powers of 1024."""
    value = raw.lower().replace(" ", "")
    number = value.rstrip("bkmg")
    unit = value[len(number) :]
    if not number.isdigit() or unit not in MEMORY_UNITS:
        raise ConfigError(f"{name} must be a size like 1gb or 512mb, not {raw!r}")
    size = int(number) * MEMORY_UNITS[unit]
    if size < 16 * 1024**2:
        raise ConfigError(f"{name} must be at least 16mb, not {raw!r}")
    return size


def _http_url(name: str, raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} must be an http(s) URL, not {raw!r}")
    return raw.rstrip("/")


def _hosts(name: str, raw: str) -> tuple[str, ...]:
    hosts = tuple(h.strip().lower() for h in raw.split(",") if h.strip())
    if any("/" in h or " " in h for h in hosts):
        raise ConfigError(f"{name} must be host names separated by commas (no scheme, no path), not {raw!r}")
    return hosts


def _token(name: str, raw: str) -> str:
    if len(raw) < MIN_SECRET_CHARS:
        raise ConfigError(f"{name} must be at least {MIN_SECRET_CHARS} characters (a random token), not shorter")
    return raw


def _origins(name: str, raw: str) -> tuple[str, ...]:
    """Origins as browsers send them (`https://www.example.com`, a port if not the default), separated by commas or
    spaces: what CORS compares byte for byte and what CSP's frame-ancestors lists."""
    found = []
    for item in raw.replace(",", " ").split():
        parts = urlsplit(item.rstrip("/"))
        try:
            port = f":{parts.port}" if parts.port else ""
        except ValueError:
            port = "?"
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path
            or parts.query
            or "@" in item
            or port == "?"
        ):
            raise ConfigError(f"{name} must list origins like https://www.example.com, not {item!r}")
        found.append(f"{parts.scheme}://{parts.hostname}{port}")
    if not found:
        raise ConfigError(f"{name} must list origins like https://www.example.com, or be unset (any site)")
    return tuple(dict.fromkeys(found))


def _lever_url(name: str, raw: str) -> str:
    url = _http_url(name, raw)
    host = urlsplit(url).hostname or ""
    if urlsplit(url).scheme != "https" and not _is_loopback(host):
        raise ConfigError(f"{name} must use https (Lever refuses plain http), not {raw!r}")
    return url


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _sentinel(r: _Reader) -> RedisSentinel | None:
    """REDIS_SENTINELS (host:port,...) with REDIS_SENTINEL_MASTER, and optionally REDIS_PASSWORD (the primary's) and
    REDIS_SENTINEL_PASSWORD; the one way to name the Redis besides REDIS_URL, never both."""
    addresses = r.get("REDIS_SENTINELS", None, _host_ports)
    master = r.str("REDIS_SENTINEL_MASTER", None)
    password, sentinel_password = r.str("REDIS_PASSWORD", None), r.str("REDIS_SENTINEL_PASSWORD", None)
    if not addresses:
        for name, value in (
            ("REDIS_SENTINEL_MASTER", master),
            ("REDIS_PASSWORD", password),
            ("REDIS_SENTINEL_PASSWORD", sentinel_password),
        ):
            if value:
                raise ConfigError(
                    f"{name} is set but REDIS_SENTINELS is not (it goes with REDIS_SENTINELS; a "
                    "REDIS_URL carries its own password)"
                )
        return None
    if r.str("REDIS_URL", None):
        raise ConfigError(
            "REDIS_URL and REDIS_SENTINELS are both set: set REDIS_URL for one Redis, or "
            "REDIS_SENTINELS and REDIS_SENTINEL_MASTER for a primary found through Sentinel"
        )
    if not master:
        raise ConfigError(
            "REDIS_SENTINELS is set but REDIS_SENTINEL_MASTER is not: set it to the name the Sentinels "
            "monitor the primary under (`sentinel monitor <name> ...`)"
        )
    return RedisSentinel(addresses, master, password, sentinel_password)


def _host_ports(name: str, raw: str) -> tuple[tuple[str, int], ...]:
    found = []
    for item in (x.strip() for x in raw.split(",")):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"{name} must be host:port pairs separated by commas, not {item!r}")
        found.append((host.strip("[]"), int(port)))
    return tuple(found)


def _files_url(name: str, raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(
            f"{name} must be an s3://bucket/prefix URL (any S3-compatible store: its endpoint goes in "
            f"AWS_ENDPOINT_URL_S3), not {raw!r}"
        )
    return raw


def _redis_url(name: str, raw: str) -> str:
    if urlsplit(raw).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"{name} must be a redis://, rediss:// or unix:// URL, not {raw!r}")
    return raw


def _redis_prefix(env: Mapping[str, str]) -> str:
    """JOBSITE_REDIS_PREFIX, checked; the key names were built with the one read at import (`keyspace`), and RQ's
    prefix must be the one derived from it, so rq must not have been imported before `jobsite.settings`."""

    prefix = env.get(keyspace.VARIABLE, "").strip()
    if (why := keyspace.problem(prefix)) is not None:
        raise ConfigError(f"{keyspace.VARIABLE} must be {why}, not {prefix!r}")
    if prefix != keyspace.PREFIX:
        raise ConfigError(
            f"{keyspace.VARIABLE} changed after start-up ({keyspace.PREFIX!r}, now {prefix!r}): set it "
            "in the environment before the process starts"
        )
    rq_defaults = sys.modules.get("rq.defaults")
    rq_prefix = getattr(rq_defaults, "RQ_KEY_PREFIX", keyspace.rq_prefix(prefix))
    if rq_prefix != keyspace.rq_prefix(prefix):
        raise ConfigError(
            f"RQ's key prefix is {rq_prefix!r}, not {keyspace.rq_prefix(prefix)!r} as "
            f"{keyspace.VARIABLE} wants: rq was imported before jobsite.settings"
        )
    return prefix
