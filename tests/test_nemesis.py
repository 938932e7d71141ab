"""The nemesis in the suite (issue 26): a minute of the site's real processes under a random schedule of faults from
every category, with load, checked against the invariants (tests/nemesis). A new seed each run, printed; a failure
names the seed and the command that replays it."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import wait_for
from .nemesis import faults
from .nemesis.harness import Cluster
from .nemesis.run import run_once, summary

SECONDS = 35  # of faults; with start-up, the tail and the drain about a minute when it passes
# While this is not empty, a failing short run is reported (xfail, with its seed and what broke) instead of failing the
# suite. Emptied once a 30-minute run passed on main (seed 1561872082: 2,521 requests, 1,952 receipts, 0 duplicates,
# 0 lost, 0 5xx, longest answer 3.0 s, 0 Lever 429s outside storms; its backlog of 198 applies, 686 creates and 414
# notes drained in 282 s against a bound of 399 s): a failing run now fails the suite, naming its seed.
PENDING = ""


@pytest.mark.slow
def test_a_minute_of_random_faults_keeps_every_promise(capsys) -> None:
    seed = int(os.environ.get("NEMESIS_SEED") or random.randrange(2**31))
    replay = f"scripts/nemesis --seed {seed} --seconds {SECONDS}"
    with capsys.disabled():
        print(f"\nnemesis seed {seed} (replay: {replay})")
    report = run_once(seed, SECONDS, say=lambda _: None)
    text = summary(report)
    with capsys.disabled():
        print(text)
    if not report.ok and PENDING:
        # Imperative, so that the summary line (-ra) names the seed and what broke, beside the reason.
        pytest.xfail(f"seed {seed} ({replay}) broke {sorted(report.verdict.invariants())}; {PENDING}")
    assert report.ok, f"nemesis seed {seed} failed; replay: {replay}\n{text}"


def test_a_seed_draws_the_same_schedule_and_the_faults_can_be_chosen() -> None:
    every = faults.schedule(7, 60, faults.CATEGORIES)
    assert every == faults.schedule(7, 60, faults.CATEGORIES)
    assert faults.loads(faults.dumps(every)) == every
    lever = faults.schedule(7, 60, ("lever",))
    assert lever
    assert {faults.KINDS[f.kind].category for f in lever} == {"lever"}
    with pytest.raises(ValueError, match="--faults"):
        faults.parse_categories("redis,typo")


def test_a_run_leaves_no_process_and_no_mount_behind() -> None:
    cluster = Cluster(clock=True, disk=True, note=lambda _: None)
    root = cluster.root
    try:
        cluster.start()
        assert cluster.leftovers()
    finally:
        cluster.stop()
    assert not cluster.leftovers()
    assert not root.exists()
    with open("/proc/mounts") as mounts:
        assert str(root) not in mounts.read()


def test_a_sigterm_stops_every_process_the_nemesis_started(tmp_path: Path) -> None:
    """`timeout`, a CI job cancelled, a person: the run stops through its finally blocks, whatever it was doing (here,
    in the middle of its faults), and leaves no process, no mount and no temp dir behind."""
    argv = [sys.executable, "-m", "tests.nemesis", "--seconds", "120", "--shrink-minutes", "0", "--out", str(tmp_path)]
    with (tmp_path / "stderr").open("wb") as stderr:
        run = subprocess.Popen(
            argv,
            cwd=Path(__file__).parent.parent,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        root = wait_for(lambda: _started(tmp_path), timeout=180, interval=0.2, what="the nemesis's load to start")
        run.send_signal(signal.SIGTERM)
        assert run.wait(120) == 128 + signal.SIGTERM, (tmp_path / "stderr").read_text()
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert not Path(root).exists()
    mark = root.encode()
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            assert mark not in (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes(), proc.name
    with open("/proc/mounts") as mounts:
        assert root not in mounts.read()


def _started(out: Path) -> str | None:
    """The run's temp dir once its load has started (the history's first line names it), else None."""
    for history in out.glob("seed-*.jsonl"):
        lines = []
        for line in history.read_text().splitlines():
            with contextlib.suppress(ValueError):  # the line being written
                lines.append(json.loads(line))
        if any(e.get("type") == "load" and e.get("phase") == "start" for e in lines):
            return lines[0]["root"]
    return None
