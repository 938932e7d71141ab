"""The `jobsite` command: run the whole site (`up`) or one part of it per process manager entry."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import click
import requests

from .records.store import State
from .redisdb.redis_server import child_env, embedded, outside
from .settings import ConfigError, Settings, load_settings
from .supervisor import Supervisor
from .supervisor import role as _role

# `jobsite up` stops within 10 s: gunicorn lets requests finish for GRACEFUL_S, then the group is killed.
GRACEFUL_S = 7
STOP_TIMEOUT_S = 9


def _settings() -> Settings:
    try:
        settings = load_settings()
    except ConfigError as e:
        raise click.ClickException(str(e)) from None
    logging.getLogger().setLevel(settings.log_level)
    return settings


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
    # The children connect to the same Redis; an embedded one stops by itself once none of them uses it any more.
    env = dict(os.environ, JOBSITE_DATA_DIR=str(settings.data_dir), **child_env(settings))
    children: list[subprocess.Popen[bytes]] = []

    def spawn(*args: str) -> None:
        # Each child leads its own process group, so a stop reaches what it forked too (gunicorn's workers, RQ's
        # scheduler); Ctrl-C reaches only this process, which stops the children in order.
        children.append(subprocess.Popen([sys.executable, "-m", "jobsite", *args], env=env, start_new_session=True))

    _require_free_port(host, port, "--port")
    if settings.uses_sandbox:
        _require_free_port("127.0.0.1", settings.sandbox_port, "JOBSITE_SANDBOX_PORT", what="the Lever sandbox")
    outbox = settings.uses_sandbox and "JOBSITE_SMTP_URL" not in os.environ
    if outbox:
        # Out of the box every email lands in the sandbox's outbox, so a person trying the site sees them. Nothing
        # leaves the machine, which is why a Python lacking the CVE-2024-6923 fix may write them here.
        smtp_port = _free_port()
        env.update(
            JOBSITE_SMTP_URL=f"smtp://127.0.0.1:{smtp_port}",
            JOBSITE_MAIL_ON_UNFIXED_PYTHON="1",
            JOBSITE_PUBLIC_URL=os.environ.get("JOBSITE_PUBLIC_URL") or f"http://{host}:{port}",
        )
        # A posting the sandbox publishes reaches the job list, and its alerts the outbox, within a minute.
        env.update(
            {
                name: os.environ.get(name) or value
                for name, value in (("JOBSITE_CATALOG_FRESH_S", "30"), ("JOBSITE_ALERT_GATHER_S", "15"))
            }
        )
    try:
        if settings.uses_sandbox:  # announced in the banner below, so the sandbox itself says nothing
            spawn(
                "sandbox",
                "--port",
                str(settings.sandbox_port),
                "--quiet",
                *(["--smtp-port", str(smtp_port)] if outbox else []),
            )
        # The web starts beside the sandbox (it reads Lever only when a page asks); the worker, which reads Lever as
        # soon as it runs, starts once the sandbox answers, so its first look finds Lever there.
        spawn("web", "--port", str(port), "--host", host)
        if settings.uses_sandbox:
            _wait_http(f"{settings.sandbox_url}/_sandbox/", children, stop)
        spawn("worker")
        site = f"http://{host}:{port}"
        _wait_http(f"{site}/healthz", children, stop)
        if stop.is_set():
            return
        click.echo(f"\n  jobsite is up:   {site}/")
        if settings.uses_sandbox:
            click.echo(f"  Lever sandbox:   {settings.sandbox_url}/_sandbox/  (controls; no LEVER_API_KEY set)")
        if outbox:
            click.echo(f"  emails sent:     {settings.sandbox_url}/_sandbox/outbox  (no JOBSITE_SMTP_URL set)")
        click.echo(f"  data directory:  {settings.data_dir}\n  Ctrl-C stops everything.\n")
        # From now on a part that dies is started again (the embedded Redis, web, worker, sandbox), not the end.
        keeper = Supervisor(
            children, env, None if outside(settings) else embedded(settings), lambda line: click.echo(line, err=True)
        )
        while not stop.wait(0.5):
            keeper.check()
    finally:
        _stop_all(children)


def _wait_http(url: str, children: list[subprocess.Popen[bytes]], stop: threading.Event, timeout: float = 60) -> None:
    """Wait until `url` answers; a stop request ends the wait quietly, a dead child or a timeout is an error."""
    deadline = time.monotonic() + timeout
    while not stop.is_set():
        for c in children:
            if c.poll() is not None:
                raise click.ClickException(
                    f"jobsite {_role(c)} exited while starting (exit code {c.returncode}); its messages are above"
                )
        if time.monotonic() > deadline:
            raise click.ClickException(f"{url} did not answer within {timeout:.0f} s")
        try:
            if requests.get(url, timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)


def _free_port() -> int:
    """A port nothing listens on now, for the sandbox's outbox (kept across its restarts by the supervisor)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _require_free_port(host: str, port: int, setting: str, what: str = "the site") -> None:
    """One clear line when a port is taken, before anything starts, instead of a server's retries and a start-up
    that times out."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds: TIME_WAIT does not count
        try:
            s.bind((host, port))
        except OSError:
            raise click.ClickException(
                f"port {port} on {host} is in use, so {what} cannot listen there; choose another with {setting}"
            ) from None


def _stop_all(children: list[subprocess.Popen[bytes]], timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM each child; whatever of its process group is left after `timeout` (a worker that missed the
    signal, a stray scheduler) is SIGKILLed, so nothing outlives `jobsite up` or keeps its port."""
    for c in reversed(children):
        if c.poll() is None:
            c.terminate()
    deadline = time.monotonic() + timeout
    for c in children:
        try:
            c.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log_stop = f"jobsite: {_role(c)} did not stop within {timeout:.0f} s; killing it"
            click.echo(log_stop, err=True)
        with contextlib.suppress(ProcessLookupError):  # the whole group is gone
            os.killpg(c.pid, signal.SIGKILL)
        c.wait()


@main.command()
@click.option("--port", type=int, default=None, help="Default JOBSITE_PORT or 8000.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--workers", type=int, default=None, help="Web processes (default JOBSITE_WEB_WORKERS).")
def web(port: int | None, host: str, workers: int | None) -> None:
    """Serve the site with gunicorn (production WSGI server), in gevent workers.

    gevent, because a slow client then costs a greenlet, not one of a few threads: 32 sockets trickling a body
    stalled 2 gthread workers x 8 threads, /healthz included. This process becomes a fresh gunicorn (exec), so that
    its master imports neither the app nor requests or redis: each worker patches first, then builds the app, and
    nothing made before the fork (a lock, a connection, an SSL context) is shared unpatched."""
    settings = _settings()
    from .redisdb.redis_server import client, outside, warn_at_start

    if outside(settings) and not os.environ.get("JOBSITE_SECRET_KEY"):
        click.echo(
            "jobsite web: warning: REDIS_URL (or REDIS_SENTINELS) is set but JOBSITE_SECRET_KEY is not, so this "
            "machine signs forms "
            f"and console sessions with its own key ({settings.data_dir / 'secret_key'}); web processes on "
            "other machines will refuse them. Set the same JOBSITE_SECRET_KEY everywhere.",
            err=True,
        )
    for name, value in child_env(settings).items():  # start the embedded server once, before forking
        os.environ.setdefault(name, value)
    settings = _settings()  # with REDIS_URL set: a misconfiguration still stops here, named, before gunicorn starts
    _say_why_mail_is_off(settings, "web")
    with client(settings, retries=0) as r:
        warn_at_start(r, settings)
    port = port or settings.port
    _require_free_port(host, port, "--port")
    args = [
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers or settings.web_workers),
        # gevent's worker with a cap on one address's connections and a deadline for bodies (web/server.py)
        "--worker-class",
        "jobsite.web.server.Worker",
        "--worker-connections",
        "1000",
        "--timeout",
        "60",
        "--graceful-timeout",
        str(GRACEFUL_S),
        "--keep-alive",
        "5",
        "--error-logfile",
        "-",
        "--log-level",
        "warning",
        "--name",
        "jobsite-web",
        # gunicorn trusts X-Forwarded-Proto from 127.0.0.1 by default: only JOBSITE_PROXY_COUNT says whom to trust
        "--forwarded-allow-ips",
        "",
    ]
    os.environ["JOBSITE_PORT"] = str(port)  # the port served: a Host naming another one is refused (serve())
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-m", "gunicorn", *args, "jobsite.web.app:serve()"])  # noqa: S606 (no shell wanted)


@main.command()
@click.option("--burst", is_flag=True, help="Process what is queued, then exit.")
def worker(burst: bool) -> None:
    """Deliver queued applications to Lever (RQ worker with its scheduler)."""
    from .worker.process import run_worker

    settings = _settings()
    _say_why_mail_is_off(settings, "worker")
    run_worker(settings, burst=burst)


def _say_why_mail_is_off(settings: Settings, command: str) -> None:
    """JOBSITE_SMTP_URL is set but this Python may not send the email: said once at start; applications go on."""
    if settings.mail_off:
        click.echo(f"jobsite {command}: warning: {settings.mail_off}", err=True)


@main.command()
@click.option("--port", type=int, default=None, help="Default JOBSITE_SANDBOX_PORT or 8001.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--quiet", is_flag=True, hidden=True, help="Print nothing at start (`jobsite up` announces it).")
@click.option(
    "--smtp-port",
    type=int,
    default=None,
    help="Also take emails over SMTP on this port and show them at /_sandbox/outbox.",
)
def sandbox(port: int | None, host: str, quiet: bool, smtp_port: int | None) -> None:
    """Run the Lever sandbox: a simulator of Lever's API with switches under /_sandbox/."""
    from .sandbox import SandboxServer

    port = port or _settings().sandbox_port
    _require_free_port(host, port, "--port (or JOBSITE_SANDBOX_PORT)", what="the Lever sandbox")
    if smtp_port:
        _require_free_port(host, smtp_port, "--smtp-port", what="the sandbox's outbox")
    server = SandboxServer(host, port, smtp_port=smtp_port)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.server.shutdown).start())
    if not quiet:
        click.echo(f"Lever sandbox on {server.url}/v1 (API key: sandbox-key), controls at {server.url}/_sandbox/")
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


@main.group()
def applications() -> None:
    """List and retry applications (recruiters' tools on the command line)."""


@applications.command("list")
@click.option("--state", default="needs_attention", show_default=True, type=click.Choice([s.value for s in State]))
@click.option("--limit", default=50, show_default=True)
def list_applications(state: str, limit: int) -> None:
    """Applications in a state, oldest first, with why they are there."""
    from .records import store
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
    from .delivery import jobs
    from .records import store
    from .services import Services

    svc = Services(_settings())
    chosen = list(receipts)
    if retry_all:
        chosen += store.receipts(svc.redis, store.State.NEEDS_ATTENTION, 100_000)
    if not chosen:
        raise click.UsageError("name receipts, or pass --all")
    queued = jobs.retry_now(svc.redis, chosen)
    click.echo(f"queued {len(queued)} application(s) for delivery")


@main.group()
def admin() -> None:
    """Recruiter accounts for the console under /admin."""


@admin.command("add-user")
@click.argument("email")
@click.option("--role", type=click.Choice(["viewer", "admin"]), default="viewer", show_default=True)
@click.option(
    "--password",
    envvar="JOBSITE_NEW_PASSWORD",
    default=None,
    help="Default: prompt (or JOBSITE_NEW_PASSWORD). Never pass it on a shared machine's command line.",
)
def add_user(email: str, role: str, password: str | None) -> None:
    """Create an account (or reset its password and role, which ends its sessions)."""
    from .console import accounts, audit
    from .services import Services

    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    r = Services(_settings()).redis
    try:
        user = accounts.add_user(r, email, password, accounts.Role(role))
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    audit.record(r, _operator(), f"add account ({user.role.value})", target=user.email)
    click.echo(f"{user.email} can sign in as {user.role.value}")


@admin.command("set-password")
@click.argument("email")
@click.option(
    "--password",
    envvar="JOBSITE_NEW_PASSWORD",
    default=None,
    help="Default: prompt (or JOBSITE_NEW_PASSWORD). Never pass it on a shared machine's command line.",
)
def set_password(email: str, password: str | None) -> None:
    """Change an account's password; every session it has open ends."""
    from .console import accounts, audit
    from .services import Services

    r = Services(_settings()).redis
    if accounts.get_user(r, email) is None:
        raise click.ClickException(f"no account {email}")
    if password is None:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    try:
        accounts.set_password(r, email, password)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    audit.record(r, _operator(), "set password", target=email.strip().lower())
    click.echo(f"{email} has a new password; its sessions have ended")


@admin.command("remove-user")
@click.argument("email")
def remove_user(email: str) -> None:
    """Remove an account; its open sessions end at once."""
    from .console import accounts, audit
    from .services import Services

    r = Services(_settings()).redis
    if not accounts.remove_user(r, email):
        raise click.ClickException(f"no account {email}")
    audit.record(r, _operator(), "remove account", target=email.strip().lower())
    click.echo(f"{email} removed; its sessions have ended")


@admin.command("users")
def list_users() -> None:
    """List accounts."""
    from .console import accounts
    from .services import Services

    for user in accounts.list_users(Services(_settings()).redis):
        click.echo(f"{user.email}  {user.role.value}")


@admin.command("add-event")
@click.argument("name")
@click.option("--date", "day", default="", help="The event's date, YYYY-MM-DD.")
@click.option("--posting", "postings", multiple=True, help="A posting id it recruits for (repeatable).")
def add_event(name: str, day: str, postings: tuple[str, ...]) -> None:
    """Create a recruiting event for capture at a booth; prints its id alone on the last line."""
    from .console import audit
    from .services import Services
    from .sourcing import events

    r = Services(_settings()).redis
    try:
        event = events.add(r, name, day, list(postings), who=_operator())
    except events.BadEvent as e:
        raise click.BadParameter(str(e)) from None
    audit.record(r, _operator(), "add event", target=event.id)
    click.echo(f"event {event.name!r} created; capture page: /admin/events/{event.id}/capture")
    click.echo(event.id)


@admin.command("find")
@click.argument("text")
def find(text: str) -> None:
    """Find applications and sourced people by reference (YQWW-ZP6N, any case, dash or not), exact email or the words
    of a name: one match a line, newest first, with its receipt (or person id), reference, name and where it stands."""
    from .privacy import lookup
    from .records import store
    from .services import Services

    found = lookup.find(Services(_settings()).redis, text, build_budget_s=None)
    for rec in found.applications:
        name = (rec.application.personal.get("fullName") if rec.application else "") or "(personal data removed)"
        click.echo(
            f"application  {rec.receipt}  {store.reference(rec.receipt)}  {name}  "
            f"{rec.posting_title or rec.posting_id}  {rec.state.value}"
        )
    for person in found.people:
        how = f"event {person.event_name}" if person.event_id else "talent community"
        click.echo(
            f"person  {person.id}  {store.reference(person.id)}  {person.name or '(personal data removed)'}  "
            f"{how}  {person.standing.value}"
        )
    if not found.applications and not found.people:
        raise click.ClickException(f"nothing matches {text!r}")


def _operator() -> str:
    """Who ran a command, for the audit log."""
    import getpass

    return f"command line ({getpass.getuser()})"


@admin.command("add-api-client")
@click.argument("name")
def add_api_client(name: str) -> None:
    """Create a key for a company's backend to post applications (Authorization: Bearer KEY). The key is printed
    once, alone on the last line, so a script can take it with `tail -n 1`."""
    from .console import api_keys, audit
    from .services import Services

    r = Services(_settings()).redis
    try:
        key = api_keys.add(r, name)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    audit.record(r, _operator(), "add API client", detail=name)
    click.echo(f"API client {name} added. Its key is shown only now; keep it in that server's secret store:", err=True)
    click.echo(key)


@admin.command("api-clients")
def list_api_clients() -> None:
    """List API clients: active or revoked, when last used, how many requests."""
    from .console import api_keys
    from .services import Services

    def when(ts: float) -> str:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "never"

    for c in api_keys.list_clients(Services(_settings()).redis):
        state = "active" if c.active else f"revoked {when(c.revoked_at)}"
        click.echo(
            f"{c.name}  {state}  created {when(c.created_at)}  last used {when(c.last_used_at)}  {c.uses} request(s)"
        )


@admin.command("revoke-api-client")
@click.argument("name")
def revoke_api_client(name: str) -> None:
    """Revoke a client's key at once: its requests get 401 from now on."""
    from .console import api_keys, audit
    from .services import Services

    r = Services(_settings()).redis
    if not api_keys.revoke(r, name):
        raise click.ClickException(f"no active API client named {name}")
    audit.record(r, _operator(), "revoke API client", detail=name)
    click.echo(f"API client {name} revoked")


@main.command()
def purge() -> None:
    """Remove personal data of applications delivered more than JOBSITE_RETENTION_DAYS ago (workers also do it
    hourly)."""
    from .privacy import retention
    from .services import Services

    settings = _settings()
    purged = retention.purge(Services(settings).delivery)
    click.echo(
        f"removed personal data of {purged.applications} application(s) older than {settings.retention_days} days"
    )
    click.echo(
        f"removed personal data of {purged.people} sourced people delivered more than "
        f"{settings.retention_days} days ago"
    )
    click.echo(
        f"removed {purged.alert_subscriptions} job alert subscription(s) never confirmed, or ended more than "
        f"{settings.retention_days} days ago"
    )


@main.group()
def report() -> None:
    """Reports."""


@report.command("pipeline")
@click.option("--since", default=None, help="Only opportunities created on or after this day (2026-01-31).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--refresh", is_flag=True, help="Sync with Lever first (names and opportunities).")
def report_pipeline(since: str | None, fmt: str, refresh: bool) -> None:
    """Where the site's candidates stand in Lever: stages, hires, funnels per posting and per source/campaign."""
    import json
    from datetime import datetime

    from .followup import report
    from .lever.client import LeverError
    from .lever.pacing import RateLimitWait
    from .services import Services

    svc = Services(_settings())
    try:
        start = datetime.strptime(since, "%Y-%m-%d").timestamp() if since else None
    except ValueError:
        raise click.BadParameter("dates look like 2026-01-31", param_hint="--since") from None
    if refresh:
        try:
            report.refresh_names(svc.delivery)
        except (LeverError, RateLimitWait) as e:  # a report is still printed from what is held
            click.echo(f"jobsite: could not refresh from Lever ({type(e).__name__}); showing what is held", err=True)
        if report.sync(svc.delivery) is None:
            click.echo("jobsite: Lever could not be synced now (maintenance or busy); showing what is held", err=True)
    data = report.report(svc.redis, start)
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
    elif fmt == "csv":
        click.echo(report.to_csv(report.rows(svc.redis, start)), nl=False)
    else:
        click.echo(f"{data['opportunities']} opportunities, {data['hired']} hired")
        for title, groups in (("posting", data["by_posting"]), ("source / campaign", data["by_source"])):
            for f in groups:
                steps = " -> ".join(
                    [f"applied {f['applied']}"]
                    + [f"{s['stage']} {s['count']}" for s in f["stages"]]
                    + [f"hired {f['hired']} ({f['hired_rate']:.0%})"]
                )
                click.echo(f"{title} {f['group']}: {steps}")
