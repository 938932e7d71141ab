"""Issue 27, item 5: no module writes another owner's Redis keys, seen at run time. While the main flows run in this
process (an application delivered and tagged, a talent sign-up confirmed and delivered, a job alert subscribed,
confirmed and sent, a console sign-in, the workers' upkeep, Lever's webhook deleting both people), a hook on
redis-py's client and pipelines (Lua scripts' KEYS included) notes each write command's keys and the module of
jobsite/ that issued it (the innermost frame in jobsite/, the Lua runner aside); each key's owner
(tests/test_redis_prefix.py's KEY_MAP) must be that module's. tests/test_architecture.py holds the same rule
statically."""

from __future__ import annotations

import re
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import redis
from redis.client import Pipeline
from rq import SimpleWorker

from jobsite.alerts import fanout, subscriptions
from jobsite.console import accounts
from jobsite.delivery import jobs
from jobsite.notify import links
from jobsite.postings import published
from jobsite.records import store
from jobsite.records.store import State
from jobsite.redisdb.clock import server_now
from jobsite.sandbox import SandboxServer
from jobsite.services import Services
from jobsite.settings import Settings
from jobsite.sourcing import optin, people
from jobsite.web.app import create_app
from jobsite.worker import tasks

from .helpers import LiveServer, Sandbox, lever_body, outbox_mails, sign_in, simple_posting, wait_for
from .test_alerts_web import ask
from .test_mail import mail_settings
from .test_optin import _join
from .test_pipeline import TOKEN
from .test_redis_prefix import KEY_MAP

PACKAGE = Path(__file__).resolve().parent.parent / "jobsite"
RUNNERS = {PACKAGE / "redisdb" / "lua.py"}  # runs a module's script: the write is that module's

# The write commands the product uses, and where their keys are: the first argument, every argument, or the first
# and those a count names (EVAL/EVALSHA: sha, numkeys, keys...; ZINTERSTORE: dest, numkeys, keys...).
FIRST = {
    "SET",
    "SETEX",
    "PSETEX",
    "SETNX",
    "GETSET",
    "GETDEL",
    "INCR",
    "INCRBY",
    "INCRBYFLOAT",
    "DECR",
    "DECRBY",
    "APPEND",
    "EXPIRE",
    "PEXPIRE",
    "EXPIREAT",
    "PEXPIREAT",
    "PERSIST",
    "HSET",
    "HSETNX",
    "HMSET",
    "HDEL",
    "HINCRBY",
    "HINCRBYFLOAT",
    "LPUSH",
    "RPUSH",
    "LPOP",
    "RPOP",
    "LREM",
    "LTRIM",
    "LSET",
    "SADD",
    "SREM",
    "SPOP",
    "ZADD",
    "ZREM",
    "ZINCRBY",
    "ZREMRANGEBYSCORE",
    "ZREMRANGEBYRANK",
    "ZPOPMIN",
    "ZPOPMAX",
    "XADD",
    "PFADD",
}
ALL_ARGS = {"DEL", "UNLINK"}
STORES = {"ZINTERSTORE", "ZUNIONSTORE", "ZDIFFSTORE"}
SCRIPTS = {"EVAL", "EVALSHA"}


def owner_of(module_path: Path) -> str:
    parts = module_path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


OWNERS = [
    (re.compile("^" + re.escape(template).replace(r"\{\}", ".+") + "$"), owner)
    for owner, templates in KEY_MAP.items()
    for template in templates
]


def key_owners(key: str) -> set[str]:
    return {owner for pattern, owner in OWNERS if pattern.match(key)}


def _text(arg: Any) -> str:
    return arg.decode(errors="replace") if isinstance(arg, bytes) else str(arg)


def written_keys(args: tuple[Any, ...]) -> list[str]:
    if not args or not isinstance(args[0], str):
        return []
    command, rest = args[0].upper(), [_text(a) for a in args[1:]]
    if command in FIRST and rest:
        return rest[:1]
    if command in ALL_ARGS:
        return rest
    if command in STORES and len(rest) > 1:
        return [rest[0], *rest[2 : 2 + int(rest[1])]]
    if command in SCRIPTS and len(rest) > 1:
        return rest[2 : 2 + int(rest[1])]
    return []


# Engines that write the keys a flow hands them, by design (ARCHITECTURE.md): the sender holds every flow's lease
# and its in-flight token; the gate parks and releases a flow's items in that flow's parked set, in one script with
# its own check (nothing parked just after it opened). Each is seen in the run below (an allowance no flow needs any
# more fails the test).
HANDED = {
    ("delivery", "sourcing", "lease"): re.compile(r"^sourced:lease:"),
    ("delivery", "sourcing", "parked"): re.compile(r"^sourced:parked$"),
    ("delivery", "followup", "parked"): re.compile(r"^followup:parked$"),
}


RQ_WRITERS = {"delivery", "worker"}


class Writes:
    """Every write to Redis by a module of jobsite/, and those to a key of another owner."""

    def __init__(self) -> None:
        self.count = 0
        self.owners: set[str] = set()
        self.wrong: set[str] = set()
        self.handed: set[tuple[str, str, str]] = set()

    def note(self, args: tuple[Any, ...]) -> None:
        keys = written_keys(args)
        if not keys:
            return
        frame = sys._getframe(2)
        while frame is not None:
            path = Path(frame.f_code.co_filename)
            if path.is_relative_to(PACKAGE) and path not in RUNNERS:
                break
            frame = frame.f_back
        if frame is None or owner_of(path) == "sandbox":
            return  # the test's own writes, RQ's worker loop, the Lever sandbox
        module, writer = f"{path.relative_to(PACKAGE)}:{frame.f_lineno}", owner_of(path)
        for key in keys:
            if key.startswith("rq:"):  # RQ's, through its API: delivery/jobs.py enqueues, the worker runs them
                if writer not in RQ_WRITERS:
                    self.wrong.add(f"{module} ({writer}) wrote {args[0]} {key} (RQ's: {sorted(RQ_WRITERS)} only)")
                continue
            self.count += 1
            owners = key_owners(key)
            self.owners |= owners
            handed = {k for k, p in HANDED.items() if k[0] == writer and k[1] in owners and p.match(key)}
            self.handed |= handed
            if writer not in owners and not handed:
                self.wrong.add(f"{module} ({writer}) wrote {args[0]} {key} (owned by {sorted(owners) or 'nobody'})")


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> Writes:
    seen = Writes()
    for cls, name in (
        (redis.Redis, "execute_command"),
        (Pipeline, "immediate_execute_command"),
        (Pipeline, "pipeline_execute_command"),
    ):
        original = getattr(cls, name)

        def hooked(self: Any, *args: Any, _original: Any = original, **options: Any) -> Any:
            seen.note(args)
            return _original(self, *args, **options)

        monkeypatch.setattr(cls, name, hooked)
    return seen


def work(r: redis.Redis) -> None:
    """What the workers would do with every job queued now, in this process."""
    SimpleWorker(jobs.queues(r), connection=r).work(burst=True)


def test_every_write_in_the_main_flows_is_by_the_owner_of_its_key(
    r: redis.Redis, settings: Settings, sandbox: Sandbox, outbox: SandboxServer, writes: Writes
) -> None:
    assert outbox.smtp is not None
    s = replace(mail_settings(settings, outbox.smtp.port, JOBSITE_MAIL_PER_SECOND="1000"), lever_webhook_token=TOKEN)
    svc = tasks.use(Services(s))
    app = create_app(s)
    client = app.test_client()
    live = LiveServer(app)  # for Lever's webhooks, in this process too
    try:
        flows(r, s, svc, client, live, sandbox, outbox)
    finally:
        live.stop()

    assert writes.count > 100
    assert {"records", "delivery", "sourcing", "alerts", "console", "notify", "lever", "metrics"} <= writes.owners
    assert writes.handed == set(HANDED)
    assert sorted(writes.wrong) == [], "\n".join(sorted(writes.wrong))


def flows(
    r: redis.Redis,
    s: Settings,
    svc: Services,
    client: Any,
    live: LiveServer,
    sandbox: Sandbox,
    outbox: SandboxServer,
) -> None:
    # An application, delivered, then tagged.
    posting = simple_posting(sandbox)
    applied = client.post(
        f"/api/v1/postings/{posting['id']}/applications",
        json=lever_body(sandbox, posting["id"]),
        headers={"Idempotency-Key": "key-owners-1"},
    )
    assert applied.status_code == 202, applied.get_data(as_text=True)
    receipt = applied.get_json()["receipt"]
    work(r)
    work(r)
    record = store.load(r, receipt)
    assert record is not None
    assert record.state == State.DELIVERED
    assert record.tags_confirmed

    # A talent sign-up, confirmed by its email's link, delivered.
    assert _join(client, sandbox, "Lena Fischer", "lena@example.com").status_code == 303
    [lena] = people.everyone(r)
    work(r)  # the opt-in email
    assert client.post(f"/talent/confirm/{lena.id}/{optin.token(s, lena.id)}").status_code == 200
    work(r)
    assert people.load(r, lena.id).standing == people.Standing.DELIVERED

    # A job alert: asked, confirmed, then a new posting sent to it by the upkeep's jobs.
    svc.catalog.refresh_postings()
    wait_for(lambda: r.sismember(published.SEEN, published.STARTED), what="the first list")
    team = sandbox.public_postings()[0]["categories"]["team"]
    assert ask(client, "wyn@example.com", urlencode({"team": team}), frequency="instant").status_code == 303
    [sub_id] = [k.decode().rpartition(":")[2] for k in r.scan_iter(subscriptions.SUB.format("*"))]
    confirm = f"/alerts/confirm/{sub_id}/{links.token(s, sub_id, 'alert-confirm')}"
    assert client.post(confirm).status_code == 200
    new = sandbox.control("postings", team=team)["id"]
    svc.catalog.refresh_postings()
    wait_for(lambda: new in published.waiting(r, server_now(r)), what="the announcement")
    tasks.upkeep()
    work(r)
    r.zadd(fanout.DUE, {k.decode(): 0 for k in r.zrange(fanout.DUE, 0, -1)})  # the gathering is over
    r.delete(tasks.UPKEEP_LOCK)
    tasks.upkeep()
    work(r)
    wait_for(lambda: any(m["recipients"] == ["wyn@example.com"] for m in outbox_mails(outbox)), what="the alert")

    # A recruiter signs in to the console and looks at the dashboard.
    accounts.add_user(r, "ada@acme.test", "correct horse battery", accounts.Role.ADMIN)
    sign_in(client, "ada@acme.test", "correct horse battery")
    assert client.get("/admin/").status_code == 200

    # Lever deletes both people: their personal data goes (privacy/, through each owner).
    sandbox.control("webhooks", url=f"{live.url}/webhooks/lever", token=TOKEN)
    assert sandbox.control(f"contacts/{record.contact_id}/delete") == {"webhooks": [200]}
    lena = people.load(r, lena.id)
    assert sandbox.control(f"contacts/{lena.contact_id}/delete") == {"webhooks": [200]}
    gone = store.load(r, receipt)
    assert gone is not None
    assert gone.application is None
    assert people.load(r, lena.id).purged
