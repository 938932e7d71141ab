"""Work on a stranger's bytes in a child process with limits on CPU time, address space and wall-clock time.

A parser's worst case is not ours to bound: a 2.5 KB ODT of nested paragraphs cost 76 s of CPU and 3.5 GB in the web
worker that read it, which gunicorn then killed with every connection on it. So what reads a file a stranger sent runs
in a child forked for the call: it shares the parent's imported parsers (a fork costs a few milliseconds, where a
fresh `python` importing jobsite and the parsers took 1.4 s: bench/confined_bench.py), closes every inherited file
but its answer's pipe, lowers its CPU priority below the web's, sets its limits, and answers JSON. The parent waits on
the pipe with `select`, which under gunicorn's gevent workers is cooperative (gevent patches select, fork and
waitpid), so the worker keeps answering meanwhile; its own memory never holds what the parser builds.

A limit reached (SIGXCPU, SIGKILL, MemoryError), the wall clock passed or a crash are all `Failed`: the caller answers
a 4xx, never a 500.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import resource
import select
import signal
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_ANSWER_BYTES = 2**20  # what a child may answer; more is a failure


@dataclass(frozen=True)
class Limits:
    cpu_s: int = 5  # CPU seconds the child may use (RLIMIT_CPU: SIGXCPU, then SIGKILL a second later)
    memory_mb: int = 256  # address space the child may add to what it inherited (RLIMIT_AS)
    wall_s: float = 10  # from fork to answer: a child past it is killed
    nice: int = 10  # below the web's priority: the site answers first on a busy machine


class Failed(Exception):
    """The child reached a limit, ran out of time or crashed; `reason` says which (never any of the input)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Busy(Exception):
    """As many children running as one process allows, for longer than the caller would wait."""


_slots = threading.BoundedSemaphore(2)  # per process (a gevent lock once patched): what a burst can take of the CPU


def run(function: Callable[[bytes], Any], content: bytes, limits: Limits = Limits(), *, wait_s: float = 5) -> Any:
    """`function(content)` (JSON-able data) computed in a forked child under `limits`; waits up to `wait_s` for one of
    the process's slots (raises Busy), raises Failed."""
    if not _slots.acquire(timeout=wait_s):
        raise Busy()
    try:
        return _run(function, content, limits)
    finally:
        _slots.release()


def _run(function: Callable[[bytes], Any], content: bytes, limits: Limits) -> Any:
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():  # Python 3.12 warns of fork in a threaded process: the child only computes
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover (the child; its outcome is what the parent reads)
        os.close(read_end)
        _child(function, content, limits, write_end)
    os.close(write_end)
    deadline = time.monotonic() + limits.wall_s
    answer = bytearray()
    try:
        while len(answer) <= MAX_ANSWER_BYTES:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([read_end], [], [], left)[0]:
                raise Failed("wall-clock limit")
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            answer += chunk
    finally:
        os.close(read_end)
        _reap(pid)
    if not answer:
        raise Failed("cpu or memory limit, or a crash")
    try:
        return json.loads(answer)
    except ValueError:
        raise Failed("no answer") from None


def _reap(pid: int) -> None:
    """Kill the child if it still runs, and wait for it (no zombie is left)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def _child(function: Callable[[bytes], Any], content: bytes, limits: Limits, out: int) -> None:
    """The child: nothing inherited but the pipe, limits first, then the function; it never returns (os._exit)."""
    try:
        os.closerange(0, out)
        os.closerange(out + 1, 65536)  # the parent's sockets: a client it closes is closed, Redis is not shared
        for number in _PARENTS_SIGNALS:  # gunicorn's handlers (a stop meant for the worker) are not the child's
            signal.signal(number, signal.SIG_DFL)
        logging.disable()  # the parsers' warnings would go to handlers whose files are closed
        os.nice(limits.nice)
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
        size = _address_space()
        resource.setrlimit(resource.RLIMIT_AS, (size + limits.memory_mb * 2**20, resource.RLIM_INFINITY))
        data = memoryview(json.dumps(function(content)).encode())
        while data:
            data = data[os.write(out, data) :]
    except BaseException:  # the child says nothing: the parent reads an empty answer as a failure
        os._exit(1)
    os._exit(0)


_PARENTS_SIGNALS = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGHUP,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGCHLD,
    signal.SIGWINCH,
)


def _address_space() -> int:
    """This process's virtual memory size in bytes (VmSize), which the address-space limit adds to."""
    with open("/proc/self/status", "rb") as status:
        for line in status:
            if line.startswith(b"VmSize:"):
                return int(line.split()[1]) * 1024
    return 0
