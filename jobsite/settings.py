"""All configuration, read once from the environment.

Every setting has a documented default, so an empty environment runs the site on its embedded parts: an embedded
redis-server in the data directory and the Lever sandbox. A bad value stops start-up with a one-line error that names
the variable (`ConfigError`).
"""

from __future__ import annotations

import builtins
import ipaddress
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

LEVER_PRODUCTION_URL = "https://api.lever.co/v1"
LEVER_EU_URL = "https://api.eu.lever.co/v1"
SANDBOX_API_KEY = "sandbox-key"


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


# What the brand colours are drawn against (static/site.css): white text on primary buttons, primary links on the
# white cards and the page's background, and the site's ink on the accent band.
WHITE, PAGE_BACKGROUND, INK = "#ffffff", "#f7f8fb", "#1d2433"
AA_CONTRAST = 4.5
IMAGE_SUFFIXES = (".png", ".svg", ".jpg", ".jpeg", ".webp", ".gif", ".ico")


@dataclass(frozen=True)
class Settings:
    """The site's configuration. Units are in the names: `_s` seconds, `_mb` mebibytes, `_per_s` per second."""

    lever_api_key: str | None = field(repr=False)
    lever_base_url: str
    sandbox_port: int
    redis_url: str | None
    redis_port: int | None
    redis_fsync: str
    data_dir: Path
    secret_key: str = field(repr=False)
    company_name: str
    port: int
    web_workers: int
    public_url: str | None
    proxy_count: int
    catalog_fresh_s: int
    catalog_keep_s: int
    lever_connect_timeout_s: float
    lever_read_timeout_s: float
    apply_rate_per_s: float
    lever_rate_per_s: float
    lever_burst: int
    retry_window_s: int
    probe_cap_s: float
    delivery_lease_s: int
    upkeep_interval_s: int
    max_file_mb: int
    max_request_mb: int
    submissions_per_ip_per_hour: int
    retention_days: int
    application_source: str
    embed_origins: tuple[str, ...] | None = None  # None: any site may embed (CORS *, frame-ancestors *)
    api_client_per_hour: int = 1000
    brand: Brand = field(default_factory=Brand)

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

    def path(self, *parts: str) -> Path:
        """A path inside the data directory, its parent created."""
        p = self.data_dir.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
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
        redis_fsync=r.choice("JOBSITE_REDIS_FSYNC", "everysec", ("everysec", "always")),
        data_dir=data_dir,
        secret_key=r.str("JOBSITE_SECRET_KEY", None) or "",
        company_name=company,
        port=r.int("JOBSITE_PORT", 8000, lo=1, hi=65535),
        web_workers=r.int("JOBSITE_WEB_WORKERS", 2, lo=1, hi=64),
        public_url=r.get("JOBSITE_PUBLIC_URL", None, _http_url),
        proxy_count=r.int("JOBSITE_PROXY_COUNT", 0, lo=0, hi=5),
        catalog_fresh_s=r.int("JOBSITE_CATALOG_FRESH_S", 300, lo=1),
        catalog_keep_s=r.int("JOBSITE_CATALOG_KEEP_S", 14 * 86400, lo=60),
        lever_connect_timeout_s=r.float("JOBSITE_LEVER_CONNECT_TIMEOUT_S", 3.05, lo=0.1),
        lever_read_timeout_s=r.float("JOBSITE_LEVER_READ_TIMEOUT_S", 20.0, lo=0.1),
        apply_rate_per_s=r.float("JOBSITE_APPLY_RATE_PER_S", 2.0, lo=0.01),
        lever_rate_per_s=r.float("JOBSITE_LEVER_RATE_PER_S", 10.0, lo=0.01),
        lever_burst=r.int("JOBSITE_LEVER_BURST", 10, lo=1),
        retry_window_s=r.int("JOBSITE_RETRY_WINDOW_S", 72 * 3600, lo=1),
        probe_cap_s=r.float("JOBSITE_PROBE_CAP_S", 30.0, lo=0.1),
        delivery_lease_s=r.int("JOBSITE_DELIVERY_LEASE_S", 60, lo=2),
        upkeep_interval_s=r.int("JOBSITE_UPKEEP_INTERVAL_S", 5, lo=1, hi=60),
        max_file_mb=r.int("JOBSITE_MAX_FILE_MB", 10, lo=1, hi=30),
        max_request_mb=r.int("JOBSITE_MAX_REQUEST_MB", 25, lo=1, hi=100),
        submissions_per_ip_per_hour=r.int("JOBSITE_SUBMISSIONS_PER_IP_PER_HOUR", 30, lo=1),
        retention_days=r.int("JOBSITE_RETENTION_DAYS", 30, lo=1),
        application_source=r.str("JOBSITE_APPLICATION_SOURCE", f"{company} careers site"),
        embed_origins=r.get("JOBSITE_EMBED_ORIGINS", None, _origins),
        api_client_per_hour=r.int("JOBSITE_API_CLIENT_PER_HOUR", 1000, lo=1),
        brand=_brand(r),
    )
    values.update(overrides)
    values["data_dir"] = Path(values["data_dir"]).absolute()
    if not values["secret_key"]:
        values["secret_key"] = _persistent_secret(Path(values["data_dir"]))
    return Settings(**values)


def _brand(r: _Reader) -> Brand:
    about = r.get("JOBSITE_BRAND_ABOUT_FILE", None, _file(()))
    return Brand(
        logo=r.get("JOBSITE_BRAND_LOGO", None, _file(IMAGE_SUFFIXES)),
        favicon=r.get("JOBSITE_BRAND_FAVICON", None, _file(IMAGE_SUFFIXES)),
        primary_colour=r.get("JOBSITE_BRAND_PRIMARY_COLOUR", Brand.primary_colour,
                             _colour(("white text", WHITE), ("the page background", PAGE_BACKGROUND))),
        accent_colour=r.get("JOBSITE_BRAND_ACCENT_COLOUR", Brand.accent_colour, _colour(("the text", INK))),
        intro=r.str("JOBSITE_BRAND_INTRO", ""),
        about_markdown=about.read_text(encoding="utf-8") if about else "",
        footer_links=r.get("JOBSITE_BRAND_FOOTER_LINKS", (), _links),
        privacy_url=r.get("JOBSITE_PRIVACY_URL", None, _http_url),
        templates_dir=r.get("JOBSITE_TEMPLATES_DIR", None, _directory),
    )


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
                raise ConfigError(f"{name} {raw} is unreadable against {what} ({ratio:.2f}:1; WCAG AA needs "
                                  f"{AA_CONTRAST}:1)")
        return value

    return parse


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours, from 1 (same) to 21 (black on white)."""

    def luminance(colour: str) -> float:
        channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _persistent_secret(data_dir: Path) -> str:
    """A random secret kept in the data dir, so every process on this machine signs with the same key."""
    path = data_dir / "secret_key"
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


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

    def float(self, name: builtins.str, default: builtins.float, lo: builtins.float = 0.0) -> builtins.float:
        return self.get(name, default, _number(float, "a number", lo, None))

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


def _http_url(name: str, raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} must be an http(s) URL, not {raw!r}")
    return raw.rstrip("/")


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
        if (parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query or "@" in item
                or port == "?"):
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


def _redis_url(name: str, raw: str) -> str:
    if urlsplit(raw).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"{name} must be a redis://, rediss:// or unix:// URL, not {raw!r}")
    return raw
