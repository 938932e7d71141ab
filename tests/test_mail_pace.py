"""The mail pace (notify/pace.py): at most JOBSITE_MAIL_PER_SECOND emails in any second, counted in Redis by every
sender together, with a share kept for the emails a person waits for; and every email goes through it."""

from __future__ import annotations

import threading

import pytest
import redis

from jobsite.notify import pace
from jobsite.redisdb.redis_server import EmbeddedRedis, connect
from jobsite.settings import ConfigError, load_settings


def _most_in_a_second(times_us: list[int]) -> int:
    times = sorted(times_us)
    most, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1_000_000:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_senders_together_never_pass_the_pace_in_any_second(r: redis.Redis, redis_server: EmbeddedRedis) -> None:
    """Four threads, each with its own connection (as four workers), take 12 slots each at 8 a second: no second
    of the Redis clock, however cut, holds more than 8; and each of them waited for the others."""
    taken: list[int] = []
    lock = threading.Lock()

    def sender() -> None:
        conn = connect(redis_server.url)
        for _ in range(12):
            at = pace.take(conn, 8)
            with lock:
                taken.append(at)

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(taken) == 48
    assert _most_in_a_second(taken) == 8  # full seconds, never more
    assert (max(taken) - min(taken)) / 1e6 >= 48 / 8 - 1 - 0.01  # 48 at 8/s span at least 5 s of the server's clock


def test_bulk_mail_leaves_a_share_to_the_mail_a_person_waits_for(r: redis.Redis) -> None:
    """With 10 a second, alerts take at most 8 of a second; a confirmation then still gets one at once."""
    assert pace.slots(10, bulk=True) == 8
    assert pace.slots(10, bulk=False) == 10
    assert pace.slots(1, bulk=True) == 1
    for _ in range(5):  # a machine stalled past the second between two takes tries again (the times say so)
        r.delete(pace.PACE)
        times = [pace.take(r, 10, bulk=True, max_wait_s=0) for _ in range(8)]
        try:
            pace.take(r, 10, bulk=True, max_wait_s=0)  # the bulk share of this second is spent...
        except pace.Paced:
            times += [pace.take(r, 10, max_wait_s=0), pace.take(r, 10, max_wait_s=0)]  # ...a receipt's is not
            with pytest.raises(pace.Paced):
                pace.take(r, 10, max_wait_s=0)
            if max(times) - min(times) < 900_000:
                return
    pytest.fail("never took 10 slots within one second")


def test_the_pace_is_read_from_jobsite_mail_per_second() -> None:
    env = {
        "JOBSITE_SMTP_URL": "smtp://127.0.0.1:2525",
        "JOBSITE_PUBLIC_URL": "https://careers.acme.test",
        "JOBSITE_MAIL_ON_UNFIXED_PYTHON": "1",
        "JOBSITE_SECRET_KEY": "x" * 20,
    }
    assert load_settings(env).smtp.per_second == 10  # type: ignore[union-attr]
    assert load_settings({**env, "JOBSITE_MAIL_PER_SECOND": "3"}).smtp.per_second == 3  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="JOBSITE_MAIL_PER_SECOND"):
        load_settings({**env, "JOBSITE_MAIL_PER_SECOND": "0"})
