"""Issue 27, item 5: JOBSITE_REDIS_PREFIX puts every Redis key of a jobsite under it, RQ's included, so two jobsites
share one Redis without seeing each other. Real processes (a web and a worker per site, the sandbox as Lever) on a
Redis of the test's own, so a SCAN sees only what those processes wrote."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from jobsite.redisdb.redis_server import EmbeddedRedis, connect
from jobsite.settings import ConfigError, Settings, load_settings

from .helpers import Sandbox, Workers, csrf_in, free_port, lever_body, simple_posting, smtp_server, wait_for, worker_env

SITES = ("acme:", "globex:")
PASSWORD = "a long enough password"


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="jsp")))  # short: the unix socket's path fits in 108 bytes
    server.ensure()
    yield server
    server.stop()


@pytest.fixture
def webs() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(20)


class Inbox:
    """A real SMTP server's handler (aiosmtpd) keeping who got mail."""

    def __init__(self) -> None:
        self.to: list[str] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.to.extend(envelope.rcpt_tos)
        return "250 OK"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    with smtp_server(handler) as port:
        yield handler, port


@pytest.fixture
def written(own_redis: EmbeddedRedis) -> Iterator[set[str]]:
    """Every key written in `own_redis` from now on, even one gone by the end (a lease, a lock, an in-flight mark):
    Redis's keyspace events, heard in a thread."""
    r = connect(own_redis.url)
    r.config_set("notify-keyspace-events", "EA")
    keys: set[str] = set()
    events = r.pubsub()
    events.psubscribe(**{"__keyevent@*__:*": lambda m: keys.add(m["data"].decode())})
    listener = events.run_in_thread(sleep_time=0.05, daemon=True)
    yield keys
    listener.stop()
    listener.join(10)
    events.close()


def _serves(url: str) -> bool:
    try:
        return requests.get(url + "/healthz", timeout=2).ok
    except requests.RequestException:  # not up yet
        return False


def site_env(settings: Settings, server: EmbeddedRedis, prefix: str, data: Path) -> dict[str, str]:
    return worker_env(settings, REDIS_URL=server.url, JOBSITE_REDIS_PREFIX=prefix, JOBSITE_DATA_DIR=str(data))


def start_web(env: dict[str, str], webs: list[subprocess.Popen[bytes]]) -> str:
    port = free_port()
    webs.append(
        subprocess.Popen(
            [sys.executable, "-m", "jobsite", "web", "--workers", "1", "--port", str(port)],
            env=env,
            start_new_session=True,
        )
    )
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: webs[-1].poll() is not None or _serves(url), timeout=60, what=f"{url} to serve")
    assert webs[-1].poll() is None, "jobsite web ended"
    return url


def apply(url: str, sandbox: Sandbox, posting_id: str) -> str:
    answer = requests.post(
        f"{url}/api/v1/postings/{posting_id}/applications", json=lever_body(sandbox, posting_id), timeout=30
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["receipt"])


def state(r: redis.Redis, prefix: str, receipt: str) -> str | None:
    raw = r.hget(f"{prefix}app:{receipt}", "state")
    return raw.decode() if raw else None


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "jobsite", *args], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def signs_in(url: str, email: str) -> bool:
    """Whether the console at `url` lets `email` in (its login form, its CSRF token, then its first page)."""
    with requests.Session() as browser:
        token = csrf_in(browser.get(f"{url}/admin/login", timeout=10).text)
        answer = browser.post(
            f"{url}/admin/login",
            timeout=10,
            allow_redirects=False,
            data={"email": email, "password": PASSWORD, "csrf_token": token},
        )
        return answer.status_code == 302 and browser.get(f"{url}/admin/", timeout=10).ok


def every_key(r: redis.Redis) -> list[str]:
    return sorted(k.decode() for k in r.scan_iter(count=1000))


@pytest.mark.slow
def test_two_jobsites_with_their_own_prefixes_share_one_redis_and_see_nothing_of_each_other(
    settings: Settings,
    own_redis: EmbeddedRedis,
    sandbox: Sandbox,
    workers: Workers,
    webs: list[subprocess.Popen[bytes]],
    written: set[str],
    tmp_path: Path,
) -> None:
    r = connect(own_redis.url)
    envs = {p: site_env(settings, own_redis, p, tmp_path / p.rstrip(":")) for p in SITES}
    urls = {p: start_web(envs[p], webs) for p in SITES}
    posting = simple_posting(sandbox)
    receipts = {p: apply(urls[p], sandbox, posting["id"]) for p in SITES}
    acme, globex = SITES
    for p in SITES:  # each site's console account and integrator key (audited)
        cli({**envs[p], "JOBSITE_NEW_PASSWORD": PASSWORD}, "admin", "add-user", f"rita@{p[:-1]}.test")
        cli(envs[p], "admin", "add-api-client", f"{p[:-1]}-ats")

    # Only acme has a worker: it delivers acme's application and leaves globex's queued in globex's queue.
    workers.start(envs[acme])
    wait_for(lambda: state(r, acme, receipts[acme]) == "delivered", timeout=60, what="acme's delivery")
    wait_for(lambda: r.llen(f"{acme}rq:queue:applications") == 0, what="acme's queue to drain")
    assert state(r, globex, receipts[globex]) == "queued"
    assert r.llen(f"{globex}rq:queue:applications") == 1
    assert sandbox.count("postings.apply") == 1

    workers.start(envs[globex])
    wait_for(lambda: state(r, globex, receipts[globex]) == "delivered", timeout=60, what="globex's delivery")
    assert sandbox.count("postings.apply") == 2  # each application once, by its own site's worker

    for mine, theirs in (SITES, SITES[::-1]):
        # A site answers for its own receipts only, and its console (the CLI's list) lists its own.
        assert requests.get(f"{urls[mine]}/api/v1/applications/{receipts[mine]}", timeout=10).status_code == 200
        assert requests.get(f"{urls[mine]}/api/v1/applications/{receipts[theirs]}", timeout=10).status_code == 404
        shown = cli(envs[mine], "applications", "list", "--state", "delivered")
        assert receipts[mine] in shown
        assert receipts[theirs] not in shown
        found = cli(envs[mine], "admin", "find", "Candidate 0")  # both sites have one: the console's search box
        assert receipts[mine] in found
        assert receipts[theirs] not in found
        users = cli(envs[mine], "admin", "users")
        assert f"rita@{mine[:-1]}.test" in users
        assert f"rita@{theirs[:-1]}.test" not in users
        clients = cli(envs[mine], "admin", "api-clients")
        assert f"{mine[:-1]}-ats" in clients
        assert f"{theirs[:-1]}-ats" not in clients
        # The console: a site's own account signs in, the other site's is unknown there.
        assert signs_in(urls[mine], f"rita@{mine[:-1]}.test")
        assert not signs_in(urls[mine], f"rita@{theirs[:-1]}.test")
        # Each site's RQ knows only its own worker, and its own queues.
        assert len(r.smembers(f"{mine}rq:workers")) == 1
        assert not set(r.smembers(f"{mine}rq:workers")) & set(r.smembers(f"{theirs}rq:workers"))
        assert r.smembers(f"{mine}rq:queues")

    keys = every_key(r)
    outside = [k for k in keys if not k.startswith(SITES)]
    assert outside == []
    r.set(f"{acme}test:last", 1)  # the last keyspace event: once it is heard, every earlier one was
    wait_for(lambda: f"{acme}test:last" in written, what="the keyspace events")
    assert sorted(k for k in written if not k.startswith(SITES)) == []  # none written anywhere else, even for a while
    assert not [k for k in keys if k.startswith(("rq:", "app:", "gate", "apps:"))]  # nothing at the old names
    for p in SITES:
        assert f"{p}app:{receipts[p]}" in keys
        assert any(k.startswith(f"{p}rq:") for k in keys)


def test_after_an_application_a_sign_up_and_an_alert_every_key_in_redis_starts_with_the_prefix(
    settings: Settings,
    own_redis: EmbeddedRedis,
    sandbox: Sandbox,
    workers: Workers,
    webs: list[subprocess.Popen[bytes]],
    inbox: tuple[Inbox, int],
    written: set[str],
    tmp_path: Path,
) -> None:
    box, smtp_port = inbox
    r = connect(own_redis.url)
    prefix = "careers.acme:"
    env = {
        **site_env(settings, own_redis, prefix, tmp_path / "data"),
        "JOBSITE_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "JOBSITE_MAIL_ON_UNFIXED_PYTHON": "1",
        "JOBSITE_PUBLIC_URL": "https://careers.acme.test",
    }
    url = start_web(env, webs)
    workers.start(env)
    posting = simple_posting(sandbox)
    receipt = apply(url, sandbox, posting["id"])
    # An integrator's backend: its key (the audit log, its own limit) and an Idempotency-Key.
    key = cli(env, "admin", "add-api-client", "ats").split()[-1]
    answer = requests.post(
        f"{url}/api/v1/postings/{posting['id']}/applications",
        timeout=30,
        json=lever_body(sandbox, posting["id"], 1),
        headers={"Authorization": f"Bearer {key}", "Idempotency-Key": "ats-1"},
    )
    assert answer.status_code == 202, answer.text
    team = sandbox.public_postings()[0]["categories"]["team"]
    joined = requests.post(
        f"{url}/api/v1/talent",
        timeout=30,
        json={
            "name": "Lena",
            "email": "lena@example.com",
            "consent": {"store": True},
            "interests": {"teams": [team], "locations": []},
        },
    )
    assert joined.status_code == 202, joined.text
    asked = requests.post(
        f"{url}/api/v1/alerts",
        timeout=30,
        json={"email": "alan@example.com", "filters": {"team": team}, "frequency": "weekly", "language": "en"},
    )
    assert asked.status_code == 202, asked.text
    for one in (receipt, answer.json()["receipt"]):
        wait_for(lambda one=one: state(r, prefix, one) == "delivered", timeout=60, what="the deliveries")
    # The application's confirmation, the sign-up's opt-in and the alert's confirmation: each flow has run.
    wait_for(
        lambda: {"candidate0@example.com", "lena@example.com", "alan@example.com"} <= set(box.to),
        timeout=60,
        what="the three emails",
    )
    assert requests.get(f"{url}/api/v1/applications/{receipt}", timeout=10).json()["status"]
    cli(env, "applications", "list", "--state", "delivered")  # the CLI too

    keys = every_key(r)
    assert len(keys) > 20  # records, indexes, RQ's jobs and registries, the pacing, the gate, the emails' records
    assert [k for k in keys if not k.startswith(prefix)] == []
    r.set(f"{prefix}test:last", 1)  # the last event: once it is heard, every earlier one was
    wait_for(lambda: f"{prefix}test:last" in written, what="the keyspace events")
    assert len(written) > len(keys)  # keys written and gone again too
    assert sorted(k for k in written if not k.startswith(prefix)) == []
    for owned in ("sourced:", "alert:", "mail:", "rq:", "app:", "idem:", "audit", "apiclient"):
        assert any(k.startswith(prefix + owned) for k in keys), owned


@pytest.mark.parametrize("bad", ["acme corp:", "{acme}:", "x" * 65, "acme/"])
def test_a_bad_prefix_stops_start_up_naming_the_variable(bad: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from jobsite.settings import load_settings; load_settings()"],
        env={"JOBSITE_REDIS_PREFIX": bad},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode != 0
    assert "JOBSITE_REDIS_PREFIX must be" in done.stderr


def test_rq_takes_its_prefix_from_jobsites_in_every_process_that_reads_the_settings_first() -> None:
    code = (
        "import jobsite.settings, rq.defaults, rq.queue; "
        "print(rq.defaults.RQ_KEY_PREFIX, rq.queue.Queue.redis_queues_keys)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={"JOBSITE_REDIS_PREFIX": "acme:", "RQ_KEY_PREFIX": "rq"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.split() == ["acme:rq", "acme:rq:queues"], done.stderr


@pytest.mark.parametrize("entry", ["jobsite.cli", "jobsite.__main__", "jobsite.web.app", "wsgi"])
def test_every_entry_point_gives_rq_the_prefix_before_rq_loads(entry: str, tmp_path: Path) -> None:
    """`jobsite ...` (console script or `python -m`), and a WSGI server loading the app: the prefix is set first."""
    code = (
        "import sys; sys.argv = ['jobsite', '--help']; import importlib, contextlib\n"
        f"with contextlib.suppress(SystemExit): importlib.import_module({entry!r})\n"
        "import rq.defaults; print(rq.defaults.RQ_KEY_PREFIX)"
    )
    env = {
        "JOBSITE_REDIS_PREFIX": "acme:",
        "RQ_KEY_PREFIX": "rq",
        "JOBSITE_DATA_DIR": str(tmp_path),
        "PYTHONPATH": str(Path(__file__).parent.parent),
    }
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert done.stdout.split()[-1:] == ["acme:rq"], done.stderr


def test_rq_imported_before_the_settings_is_refused() -> None:
    code = "import rq, jobsite.settings; jobsite.settings.load_settings()"
    done = subprocess.run(
        [sys.executable, "-c", code], env={"JOBSITE_REDIS_PREFIX": "acme:"}, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "rq was imported before jobsite.settings" in done.stderr


def test_without_a_prefix_the_key_names_are_those_of_the_releases_before_it() -> None:
    assert load_settings({}).redis_prefix == ""
    with pytest.raises(ConfigError, match="JOBSITE_REDIS_PREFIX changed after start-up"):
        load_settings({"JOBSITE_REDIS_PREFIX": "acme:"})
    from jobsite.delivery import gate
    from jobsite.records import store

    assert (gate.GATE, store.record_key("r1"), store.ALL) == ("gate", "app:r1", "apps:all")


# Strings shaped like a key name that are not one: hash fields of `pipeline:names`, names of emails inside `mail:*`,
# an idempotency key's value, and a diskcache key (the postings catalog is on disk, not in Redis).
NOT_KEYS = {"stage:", "order:", "reason:", "hired:", "alert:", "optin:", "form:", "questions:{}"}


def test_every_key_template_in_the_code_is_built_under_the_prefix() -> None:
    """A string shaped like a key name (`family:...`, or an f-string starting so) is built by `keyspace.name`, so a
    new key family cannot slip past the prefix in a flow the process tests above do not run."""
    import ast
    import re

    shaped = re.compile(r"^[a-z_]+:[a-z_{}:*]*$")
    bare = []
    for path in sorted((Path(__file__).parent.parent / "jobsite").rglob("*.py")):
        tree = ast.parse(path.read_text())
        built = {
            id(sub)
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "keyspace.name"
            for arg in node.args
            for sub in ast.walk(arg)
        }
        bare += [
            f"{path.name}:{node.lineno} {node.value!r}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and shaped.match(node.value)
            and node.value not in NOT_KEYS
            and id(node) not in built
        ]
    assert bare == []


# Every key template, by owner, as the releases before the key modules (jobsite/keyspace/) named them: data written
# by a release before them is found under the same names after an upgrade, with nothing to migrate. A new key is
# added here; renaming one needs a migration first.
KEY_MAP = {
    "admission": ["idem:{}", "quota:{}:{}:{}:{}"],
    "alerts": [
        "alert:addr:{}",
        "alert:along:{}",
        "alert:due",
        "alert:due:lease:{}",
        "alert:due:{}",
        "alert:due:{}:batch",
        "alert:ix:any",
        "alert:ix:{}:{}",
        "alert:pause",
        "alert:qwords",
        "alert:sent:{}",
        "alert:state:{}",
        "alert:stats:{}",
        "alert:sub:{}",
    ],
    "console": [
        "apiclient:key:{}",
        "apiclient:{}",
        "apiclients",
        "audit",
        "audit:api",
        "sessions:{}",
        "signin:{}:{}",
        "user:{}",
        "users",
    ],
    "delivery": [
        "gate",
        "gate:lever_failures",
        "gate:parked",
        "gate:paused",
        "gate:probe",
        "gate:read_refused",
        "jobs:unqueued:{}",
        "lease:{}",
        "lever:can_list_opportunities",
        "replication:unacked",
        "{}:sent",
    ],
    "followup": [
        "followup:parked",
        "pipeline:names",
        "pipeline:names_refreshed",
        "pipeline:opp:{}",
        "pipeline:opps",
        "pipeline:sync_lock",
        "pipeline:synced_at",
        "pipeline:tag_prefix",
        "pipeline:webhook:{}",
    ],
    "lever": ["lever:last", "ratelimit:margin", "ratelimit:seq", "ratelimit:{}", "ratelimit:{}:slots"],
    "metrics": ["metrics:counters", "metrics:histograms"],
    "notify": ["mail:pace", "mail:{}"],
    "postings": ["alert:seen:new", "alert:seen:postings"],
    "records": [
        "app:{}",
        "app:{}:attempts",
        "app:{}:same_as",
        "apps:all",
        "apps:contact:{}",
        "apps:delivered",
        "apps:state:{}",
        "search:building:{}",
        "search:built:{}",
        "search:email:{}",
        "search:of:{}",
        "search:ref:{}",
        "search:tmp:{}",
        "search:word:{}",
        "upload:outside",
        "upload:{}",
    ],
    "redisdb": ["replication:mark"],
    "sourcing": [
        "events:all",
        "events:{}",
        "sourced:all",
        "sourced:changed",
        "sourced:client:{}:{}",
        "sourced:contact:{}",
        "sourced:delivered",
        "sourced:event:{}",
        "sourced:idem:{}",
        "sourced:lease:{}",
        "sourced:parked",
        "sourced:pending",
        "sourced:performer:*default",
        "sourced:performer:{}",
        "sourced:talent",
        "sourced:talent:email:built",
        "sourced:talent:email:cursor",
        "sourced:talent:email:{}",
        "sourced:unconfirmed",
        "sourced:{}",
        "sourced:{}:job",
        "sourced:{}:log",
        "sourced:{}:wish",
    ],
    "worker": ["retention:ran", "upkeep:lock"],
}


def test_the_key_modules_name_every_key_as_the_releases_before_them() -> None:
    import importlib
    import pkgutil

    from jobsite import keyspace

    found = {}
    for info in pkgutil.iter_modules(keyspace.__path__):
        module = importlib.import_module(f"jobsite.keyspace.{info.name}")
        found[info.name.removesuffix("_keys")] = sorted(
            value for name, value in vars(module).items() if name.isupper() and isinstance(value, str)
        )
    assert found == KEY_MAP


def test_key_names_are_built_only_in_the_key_modules() -> None:
    """Each owner's keys are in its one module of jobsite/keyspace/ (with the test above: the key map of the product
    is that one folder)."""
    import ast

    package = Path(__file__).parent.parent / "jobsite"
    elsewhere = [
        f"{path.relative_to(package)}:{node.lineno}"
        for path in sorted(package.rglob("*.py"))
        if path.parent != package / "keyspace"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "keyspace.name"
    ]
    assert elsewhere == []
