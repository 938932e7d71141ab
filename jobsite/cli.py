"""The `jobsite` command: run the whole site (`up`) or one part of it per process manager entry."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any, cast

import click
import requests

from .redis_server import EmbeddedRedis
from .settings import ConfigError, Settings, load_settings
from .store import State


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as e:
        raise click.ClickException(str(e)) from None


def _setup_logging() -> None:
    from .logs import configure

    configure()


@click.group()
def main() -> None:
    """jobsite: a careers site on Lever that keeps accepting applications when Lever is not."""
    _setup_logging()


@main.command()
@click.option("--port", type=int, default=None, help="Port of the site (default JOBSITE_PORT or 8000).")
@click.option("--host", default="127.0.0.1", show_default=True)
def up(port: int | None, host: str) -> None:
    """Run the whole site here: embedded Redis, the Lever sandbox (without LEVER_API_KEY), web and a worker."""
    settings = _settings()
    port = port or settings.port
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    redis = None
    env = dict(os.environ, JOBSITE_DATA_DIR=str(settings.data_dir))
    if not settings.redis_url:
        redis = EmbeddedRedis(settings.data_dir, port=settings.redis_port, fsync=settings.redis_fsync)
        if not redis.ensure():
            redis = None  # already running for another process: not ours to stop
        env["REDIS_URL"] = EmbeddedRedis(settings.data_dir).url
    children: list[subprocess.Popen[bytes]] = []

    def spawn(*args: str) -> None:
        children.append(subprocess.Popen([sys.executable, "-m", "jobsite", *args], env=env))

    try:
        if settings.uses_sandbox:
            spawn("sandbox", "--port", str(settings.sandbox_port))
            _wait_http(f"{settings.sandbox_url}/_sandbox/", children, stop)
        spawn("web", "--port", str(port), "--host", host)
        spawn("worker")
        site = f"http://{host}:{port}"
        _wait_http(f"{site}/healthz", children, stop)
        if stop.is_set():
            return
        click.echo(f"\n  jobsite is up:   {site}/")
        if settings.uses_sandbox:
            click.echo(f"  Lever sandbox:   {settings.sandbox_url}/_sandbox/  (controls; no LEVER_API_KEY set)")
        click.echo(f"  data directory:  {settings.data_dir}\n  Ctrl-C stops everything.\n")
        while not stop.wait(0.5):
            dead = [c for c in children if c.poll() is not None]
            if dead:
                click.echo(f"jobsite: a child process exited ({cast(list[str], dead[0].args)[3]}); stopping", err=True)
                raise SystemExit(1)
    finally:
        _stop_all(children)
        if redis is not None:
            redis.stop()


def _wait_http(url: str, children: list[subprocess.Popen[bytes]], stop: threading.Event, timeout: float = 60) -> None:
    """Wait until `url` answers; a stop request ends the wait quietly, a dead child or a timeout is an error."""
    deadline = time.monotonic() + timeout
    while not stop.is_set():
        if any(c.poll() is not None for c in children):
            raise click.ClickException(f"a jobsite process exited while starting; see the log above ({url})")
        if time.monotonic() > deadline:
            raise click.ClickException(f"{url} did not answer within {timeout:.0f} s")
        try:
            if requests.get(url, timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)


def _stop_all(children: list[subprocess.Popen[bytes]], timeout: float = 15) -> None:
    for c in reversed(children):
        if c.poll() is None:
            c.terminate()
    deadline = time.monotonic() + timeout
    for c in children:
        try:
            c.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            c.kill()
            c.wait()


@main.command()
@click.option("--port", type=int, default=None, help="Default JOBSITE_PORT or 8000.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--workers", type=int, default=None, help="Web processes (default JOBSITE_WEB_WORKERS).")
def web(port: int | None, host: str, workers: int | None) -> None:
    """Serve the site with gunicorn (production WSGI server)."""
    from gunicorn.app.base import BaseApplication

    from . import create_app
    from .redis_server import redis_url

    settings = _settings()
    os.environ.setdefault("REDIS_URL", redis_url(settings))  # start the embedded server once, before forking
    settings = _settings()
    app = create_app(settings)
    options = {
        "bind": f"{host}:{port or settings.port}",
        "workers": workers or settings.web_workers,
        "worker_class": "gthread",
        "threads": 8,
        "timeout": 60,
        "graceful_timeout": 20,
        "keepalive": 5,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "proc_name": "jobsite-web",
    }

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return app

    Server().run()


@main.command()
@click.option("--burst", is_flag=True, help="Process what is queued, then exit.")
def worker(burst: bool) -> None:
    """Deliver queued applications to Lever (RQ worker with its scheduler)."""
    from .worker import run_worker

    run_worker(_settings(), burst=burst)


@main.command()
@click.option("--port", type=int, default=None, help="Default JOBSITE_SANDBOX_PORT or 8001.")
@click.option("--host", default="127.0.0.1", show_default=True)
def sandbox(port: int | None, host: str) -> None:
    """Run the Lever sandbox: a simulator of Lever's API with switches under /_sandbox/."""
    from .sandbox import SandboxServer

    server = SandboxServer(host, port or _settings().sandbox_port)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.server.shutdown).start())
    click.echo(f"Lever sandbox on {server.url}/v1 (API key: sandbox-key), controls at {server.url}/_sandbox/")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


@main.group()
def applications() -> None:
    """List and retry applications (recruiters' tools on the command line)."""


@applications.command("list")
@click.option("--state", default="needs_attention", show_default=True,
              type=click.Choice([s.value for s in State]))
@click.option("--limit", default=50, show_default=True)
def list_applications(state: str, limit: int) -> None:
    """Applications in a state, oldest first, with why they are there."""
    from . import store
    from .services import Services

    svc = Services(_settings())
    records = store.load_many(svc.redis, store.receipts(svc.redis, store.State(state), limit))
    counts = store.counts(svc.redis)
    click.echo("  ".join(f"{k}: {v}" for k, v in counts.items()))
    for rec in records:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(rec.created_at))
        click.echo(f"{rec.receipt}  {when}  {rec.posting_title[:40]:40}  {rec.last_error}")


@applications.command("retry")
@click.argument("receipts", nargs=-1)
@click.option("--all", "retry_all", is_flag=True, help="Retry every application that needs attention.")
def retry(receipts: tuple[str, ...], retry_all: bool) -> None:
    """Queue applications for delivery again (after fixing what Lever refused)."""
    from . import queue, store
    from .services import Services

    svc = Services(_settings())
    chosen = list(receipts)
    if retry_all:
        chosen += store.receipts(svc.redis, store.State.NEEDS_ATTENTION, 100_000)
    if not chosen:
        raise click.UsageError("name receipts, or pass --all")
    queued = queue.retry_now(svc.redis, chosen)
    click.echo(f"queued {len(queued)} application(s) for delivery")


@main.group()
def admin() -> None:
    """Recruiter accounts for the console under /admin."""


@admin.command("add-user")
@click.argument("email")
@click.option("--role", type=click.Choice(["viewer", "admin"]), default="viewer", show_default=True)
@click.option("--password", envvar="JOBSITE_NEW_PASSWORD", default=None,
              help="Default: prompt (or JOBSITE_NEW_PASSWORD). Never pass it on a shared machine's command line.")
def add_user(email: str, role: str, password: str | None) -> None:
    """Create an account (or reset its password and role)."""
    from . import users
    from .services import Services

    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = users.add_user(Services(_settings()).redis, email, password, users.Role(role))
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"{user.email} can sign in as {user.role.value}")


@admin.command("users")
def list_users() -> None:
    """List accounts."""
    from . import users
    from .services import Services

    for user in users.list_users(Services(_settings()).redis):
        click.echo(f"{user.email}  {user.role.value}")


def _operator() -> str:
    """Who ran a command, for the audit log."""
    import getpass

    return f"command line ({getpass.getuser()})"


@admin.command("add-api-client")
@click.argument("name")
def add_api_client(name: str) -> None:
    """Create a key for a company's backend to post applications (Authorization: Bearer KEY). The key is printed
    once, alone on the last line, so a script can take it with `tail -n 1`."""
    from . import api_clients, audit
    from .services import Services

    r = Services(_settings()).redis
    try:
        key = api_clients.add(r, name)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    audit.record(r, _operator(), "add API client", detail=name)
    click.echo(f"API client {name} added. Its key is shown only now; keep it in that server's secret store:",
               err=True)
    click.echo(key)


@admin.command("api-clients")
def list_api_clients() -> None:
    """List API clients: active or revoked, when last used, how many requests."""
    from . import api_clients
    from .services import Services

    def when(ts: float) -> str:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "never"

    for c in api_clients.list_clients(Services(_settings()).redis):
        state = "active" if c.active else f"revoked {when(c.revoked_at)}"
        click.echo(f"{c.name}  {state}  created {when(c.created_at)}  last used {when(c.last_used_at)}  "
                   f"{c.uses} request(s)")


@admin.command("revoke-api-client")
@click.argument("name")
def revoke_api_client(name: str) -> None:
    """Revoke a client's key at once: its requests get 401 from now on."""
    from . import api_clients, audit
    from .services import Services

    r = Services(_settings()).redis
    if not api_clients.revoke(r, name):
        raise click.ClickException(f"no active API client named {name}")
    audit.record(r, _operator(), "revoke API client", detail=name)
    click.echo(f"API client {name} revoked")


@main.command()
def purge() -> None:
    """Remove personal data of applications delivered more than JOBSITE_RETENTION_DAYS ago (workers also do it
    hourly)."""
    from . import retention
    from .services import Services

    settings = _settings()
    count = retention.purge(Services(settings))
    click.echo(f"removed personal data of {count} application(s) older than {settings.retention_days} days")
