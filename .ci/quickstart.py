"""The README's quick start, run as a newcomer runs it: a clean clone, `scripts/run` (runtime install only, no test
extras), the job list and one posting page answering 200, Ctrl-C, and nothing of it left running.

Standard library only: it runs before anything is installed. Every failure names its step and exits non-zero.
Usage: python3 .ci/quickstart.py [REPO]   (REPO defaults to this checkout; its committed HEAD is cloned)
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

SETUP_TIMEOUT_S = 600  # a first run creates .venv and installs from the package index
STOP_TIMEOUT_S = 20  # `jobsite up` stops its children within 10 s
LEFT_TIMEOUT_S = 10  # the embedded redis-server goes once its last user has


class StepFailed(Exception):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, ""


def wait_for(url: str, run: subprocess.Popen[bytes], deadline: float) -> str:
    """The body of `url` once it answers 200; fails if `scripts/run` exits first or the deadline passes."""
    while time.monotonic() < deadline:
        if run.poll() is not None:
            raise StepFailed(f"scripts/run exited with {run.returncode} before {url} answered")
        try:
            status, body = get(url)
            if status == 200:
                return body
        except OSError:
            pass
        time.sleep(0.5)
    raise StepFailed(f"{url} did not answer 200 in time")


def processes_under(folder: Path) -> list[str]:
    """Processes whose working directory or command line is inside `folder`: what a run there left behind."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if int(pid) != os.getpid() and (cwd.startswith(str(folder)) or str(folder) in cmdline):
            found.append(f"{pid} {cmdline.strip()[:200]}")
    return found


def main() -> int:
    repo = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
    with tempfile.TemporaryDirectory(prefix="jobsite-quickstart-") as tmp:
        clone = Path(tmp) / "jobsite"
        step = "clone"
        try:
            subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True, timeout=120)
            site_port, sandbox_port = free_port(), free_port()
            step = f"scripts/run --port {site_port} (JOBSITE_SANDBOX_PORT={sandbox_port})"
            print(f"== quick start: {step}", flush=True)
            env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBSITE_", "REDIS_URL", "LEVER_"))}
            env["JOBSITE_SANDBOX_PORT"] = str(sandbox_port)
            # its own session, as a terminal gives it: Ctrl-C is a SIGINT to that foreground process group
            run = subprocess.Popen(["scripts/run", "--port", str(site_port)], cwd=clone, env=env,
                                   start_new_session=True)
            try:
                deadline = time.monotonic() + SETUP_TIMEOUT_S
                step = "the job list answers 200"
                site = f"http://127.0.0.1:{site_port}"
                wait_for(f"{site}/", run, deadline)
                step = "one posting page answers 200"
                postings = json.loads(wait_for(f"{site}/api/v1/postings", run, deadline))
                first = postings["data"][0]["id"]
                if not re.fullmatch(r"[A-Za-z0-9-]+", first):
                    raise StepFailed(f"unexpected posting id {first!r}")
                wait_for(f"{site}/jobs/{first}", run, deadline)
                print("== quick start: the job list and a posting answered 200", flush=True)
            finally:
                if run.poll() is None:
                    os.killpg(run.pid, signal.SIGINT)
                try:
                    run.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    os.killpg(run.pid, signal.SIGKILL)
                    step = "Ctrl-C stops scripts/run"
                    raise StepFailed(f"scripts/run did not exit within {STOP_TIMEOUT_S} s of Ctrl-C") from None
            step = "nothing is left running"
            deadline = time.monotonic() + LEFT_TIMEOUT_S
            while (left := processes_under(clone)) and time.monotonic() < deadline:
                time.sleep(0.2)
            if left:
                for line in left:
                    os.kill(int(line.split()[0]), signal.SIGKILL)
                raise StepFailed("processes left after Ctrl-C:\n  " + "\n  ".join(left))
        except (StepFailed, subprocess.SubprocessError, OSError, ValueError, KeyError, IndexError) as e:
            print(f"ci: the quick start failed at step «{step}»: {e}", file=sys.stderr)
            return 1
    print("== quick start: stopped cleanly, nothing left running", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
