"""`jobsite up` runs the whole site from nothing, and stops every child cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from jobsite.redis_server import EmbeddedRedis

from .conftest import free_port


def test_up_serves_health_within_10_seconds_and_stops_cleanly() -> None:
    data = Path(tempfile.mkdtemp(prefix="jsu"))
    port, sandbox_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBSITE_", "LEVER_", "REDIS_"))}
    env.update(JOBSITE_DATA_DIR=str(data), JOBSITE_SANDBOX_PORT=str(sandbox_port))
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "jobsite", "up", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        ready = None
        while time.monotonic() - started < 10 and ready is None:
            try:
                health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                readiness = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                if health.status_code == readiness.status_code == 200:
                    ready = readiness.json()
            except requests.ConnectionError:
                time.sleep(0.1)
        assert ready is not None, "jobsite up did not serve /healthz and /readyz within 10 s"
        assert ready["redis"] == "ok"
        assert requests.get(f"http://127.0.0.1:{sandbox_port}/_sandbox/", timeout=2).ok
        redis_pid = EmbeddedRedis(data).pid
        assert redis_pid is not None
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert f"http://127.0.0.1:{port}/" in out and f"http://127.0.0.1:{sandbox_port}/_sandbox/" in out
    assert not EmbeddedRedis(data).ping()
    for port_ in (port, sandbox_port):
        try:
            requests.get(f"http://127.0.0.1:{port_}/", timeout=1)
            raise AssertionError(f"port {port_} still served after SIGTERM")
        except requests.ConnectionError:
            pass
