"""Shared bench helpers: start processes, wait for them, measure with wrk (or a Python client without it)."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import requests

from jobsite.redisdb.redis_server import EmbeddedRedis, connect

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not come up")


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = tempfile.NamedTemporaryFile("w", prefix="bench-", suffix=".log", delete=False)  # noqa: SIM115 (the child keeps it)
    print(f"  {' '.join(args[2:4])}: log in {log.name}", file=sys.stderr)
    return subprocess.Popen(args, env={**os.environ, **env}, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


def temp_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


def load(url: str, seconds: float = 10, connections: int = 32) -> dict[str, float]:
    """Requests/s and latency percentiles for GETs of `url`, with wrk if installed, else a Python client."""
    if shutil.which("wrk"):
        out = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{int(seconds)}s", "--latency", url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        p50 = _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1))
        p99 = _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1))
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "errors": float(errors.group(1)) if errors else 0.0}
    return _python_load(url, seconds, connections)


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _python_load(url: str, seconds: float, connections: int) -> dict[str, float]:
    host, port, path = re.match(r"http://([^:/]+):(\d+)(.*)", url).groups()
    latencies: list[float] = []
    errors = [0]
    deadline = time.monotonic() + seconds

    def worker() -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        while time.monotonic() < deadline:
            t = time.perf_counter()
            conn.request("GET", path or "/")
            resp = conn.getresponse()
            resp.read()
            latencies.append(time.perf_counter() - t)
            if resp.status >= 400:
                errors[0] += 1

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies.sort()
    return {
        "rps": len(latencies) / seconds,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "errors": float(errors[0]),
    }


PY = sys.executable


def bench_posting(sb: Any, parity: int = 1) -> tuple[str, Callable[[int], dict[str, Any]]]:
    """A public posting of the sandbox's seed (odd: no file asked; even: a resume) and a function that makes the nth
    valid application to it, in the shape of Lever's Apply."""
    pid = next(
        pid
        for i, pid in enumerate(sb.questions)
        if i % 2 == parity
        and sb.postings[pid]["state"] == "published"
        and "public" in (sb.postings[pid]["distributionChannels"] or [])
    )
    form = sb.questions[pid]

    def body(n: int) -> dict[str, Any]:
        custom = [
            {
                "id": q["id"],
                "fields": [
                    {"value": (f["options"][0]["text"] if f.get("options") else "yes") if f["required"] else None}
                    for f in q["fields"]
                ],
            }
            for q in form["customQuestions"]
        ]
        personal = [{"name": "fullName", "value": f"Bench {n}"}, {"name": "email", "value": f"b{n}@example.com"}]
        if any(p["name"] == "preferredPostingLocation" for p in form["personalInformation"]):
            personal.append({"name": "preferredPostingLocation", "value": sb.postings[pid]["categories"]["location"]})
        return {"personalInformation": personal, "customQuestions": custom}

    return pid, body


def start_site(
    sandbox_url: str, prefix: str, **extra: str
) -> tuple[Path, str, subprocess.Popen[bytes], subprocess.Popen[bytes]]:
    """`jobsite web` and one `jobsite worker` on a new data dir against the sandbox, with `extra` settings: the data
    dir, the site's URL, and the two processes (stop them with `stop`)."""
    data = temp_dir(prefix)
    port = free_port()
    env = {
        "JOBSITE_DATA_DIR": str(data),
        "LEVER_BASE_URL": f"{sandbox_url}/v1",
        "JOBSITE_SUBMISSIONS_PER_IP_PER_HOUR": "1000000",
        "JOBSITE_LOG_LEVEL": "WARNING",
        **extra,
    }
    web = spawn([PY, "-m", "jobsite", "web", "--port", str(port)], env)
    worker = spawn([PY, "-m", "jobsite", "worker"], env)
    return data, f"http://127.0.0.1:{port}", web, worker


@dataclass
class SandboxedSite:
    """What `sandboxed_site` started: the site's URL, the sandbox's (and a session to drive it), and the Redis."""

    data: Path
    redis: redis.Redis
    env: dict[str, str]
    url: str
    sandbox_url: str
    control: requests.Session
    procs: list[subprocess.Popen[bytes]]

    def start_worker(self) -> subprocess.Popen[bytes]:
        """One more `jobsite worker` process on the same Redis (as on another machine), stopped with the rest."""
        proc = spawn([PY, "-m", "jobsite", "worker"], self.env)
        self.procs.append(proc)
        return proc


@contextlib.contextmanager
def sandboxed_site(prefix: str, **env: str) -> Iterator[SandboxedSite]:
    """An embedded redis-server, the sandbox and `jobsite web` on a new data dir, with `env` on top of the bench
    defaults; each started process (workers first) and the Redis stop on the way out. Lever is another system: the
    sandbox runs in its own process, so its clock of arrivals shares no lock with us."""
    data = temp_dir(prefix)
    server = EmbeddedRedis(data)
    server.ensure()
    port, sandbox_port = free_port(), free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    env = {
        "JOBSITE_DATA_DIR": str(data),
        "REDIS_URL": server.url,
        "LEVER_BASE_URL": f"{sandbox_url}/v1",
        "JOBSITE_SUBMISSIONS_PER_IP_PER_HOUR": "1000000",
        "JOBSITE_LOG_LEVEL": "WARNING",
        **env,
    }
    procs = [
        spawn([PY, "-m", "jobsite", "sandbox", "--port", str(sandbox_port)], env),
        spawn([PY, "-m", "jobsite", "web", "--port", str(port)], env),
    ]
    site = SandboxedSite(
        data, connect(server.url), env, f"http://127.0.0.1:{port}", sandbox_url, requests.Session(), procs
    )
    try:
        wait_http(sandbox_url + "/_sandbox/")
        wait_http(site.url + "/healthz")
        yield site
    finally:
        for proc in reversed(procs):
            stop(proc)
        server.stop()


def simple_form(session: requests.Session, sandbox_url: str) -> tuple[str, dict]:
    """A published public posting with one location whose form asks for no file: its id and form."""
    postings = session.get(f"{sandbox_url}/v1/postings?state=published", auth=("sandbox-key", ""), timeout=5)
    for p in postings.json()["data"]:
        if "public" not in (p["distributionChannels"] or []) or len(p["categories"]["allLocations"]) != 1:
            continue
        form = session.get(f"{sandbox_url}/v1/postings/{p['id']}/apply", auth=("sandbox-key", ""), timeout=5).json()
        if not any(q["type"] == "file-upload" and q.get("required") for q in form["data"]["personalInformation"]):
            return p["id"], form["data"]
    raise SystemExit("no posting without a file in the sandbox's seed")


def submit(site: str, pid: str, form: dict, i: int, *, prefix: str = "p") -> str:
    """Application `i` to that form, through the site's JSON API (from `<prefix><i>@example.com`): its receipt."""
    custom = [
        {
            "id": q["id"],
            "fields": [
                {"value": (f["options"][0]["text"] if f.get("options") else "yes") if f["required"] else None}
                for f in q["fields"]
            ],
        }
        for q in form["customQuestions"]
    ]
    body = {
        "personalInformation": [
            {"name": "fullName", "value": f"Bench {i}"},
            {"name": "email", "value": f"{prefix}{i}@example.com"},
        ],
        "customQuestions": custom,
    }
    answer = requests.post(f"{site}/api/v1/postings/{pid}/applications", json=body, timeout=30)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["receipt"])


def wait_until(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.2)
