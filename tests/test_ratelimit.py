"""The shared pacing against the real redis-server, with the limiter's clock injected (no sleeping)."""

from __future__ import annotations

import itertools
import threading

import pytest
import redis

from jobsite.lever import pacing
from jobsite.lever.pacing import Limit, Limits
from jobsite.redisdb.redis_server import EmbeddedRedis, connect

T = 1_800_000_000.0  # an injected "now" (epoch s)
LIMITS = Limits.of(2, 10, 0.1)  # Lever's numbers, a 100 ms margin: applies 550 ms apart, calls 110 ms apart


def at(t: float = T):
    return lambda: t


def slots(r: redis.Redis, limits: tuple[Limit, ...], n: int, t: float = T) -> list[float]:
    """Reserve n slots asked for at time t; their offsets from t in seconds."""
    out = []
    for _ in range(n):
        slot = pacing.reserve(r, limits, 60, clock=at(t))
        assert slot.reserved
        out.append(slot.at_ms / 1000 - T)
    return out


def test_slots_are_spaced_by_the_window_and_margin_over_the_limit(r: redis.Redis) -> None:
    assert slots(r, (LIMITS.apply,), 5) == pytest.approx([0, 0.55, 1.1, 1.65, 2.2])
    assert slots(r, (LIMITS.lever,), 3) == pytest.approx([0, 0.11, 0.22])


def test_any_n_plus_one_slots_span_the_window_and_margin(r: redis.Redis) -> None:
    both = (LIMITS.apply, LIMITS.lever)
    applies = slots(r, both, 6)
    calls = slots(r, (LIMITS.lever,), 30)
    applies += slots(r, both, 4, T + 0.3)
    applies.sort()
    calls = sorted(calls + applies)  # an apply is a call too
    assert all(b - a >= 1.1 - 1e-3 for a, b in zip(applies, applies[2:], strict=False))  # any 3 applies
    assert all(b - a >= 1.1 - 1e-3 for a, b in zip(calls, calls[10:], strict=False))  # any 11 calls


def test_an_apply_takes_a_slot_on_both_limits_and_other_calls_fill_the_gaps(r: redis.Redis) -> None:
    both, calls = (LIMITS.apply, LIMITS.lever), (LIMITS.lever,)
    assert slots(r, both, 2) == pytest.approx([0, 0.55])
    assert slots(r, calls, 4) == pytest.approx([0.11, 0.22, 0.33, 0.44])  # between the applies, not after them
    assert slots(r, calls, 2) == pytest.approx([0.66, 0.77])  # 0.55 is an apply: a call too
    assert slots(r, both, 1) == pytest.approx([1.1])


def test_nothing_is_reserved_beyond_the_longest_wait(r: redis.Redis) -> None:
    slots(r, (LIMITS.apply,), 3)
    too_far = pacing.reserve(r, (LIMITS.apply,), 1.0, clock=at())
    assert not too_far.reserved
    assert too_far.wait_s == pytest.approx(1.65)
    assert slots(r, (LIMITS.apply,), 1) == pytest.approx([1.65])  # the same slot is still free


def test_a_429_lowers_the_rate_pauses_everyone_and_the_rate_climbs_back(r: redis.Redis) -> None:
    apply = LIMITS.apply
    first = pacing.reserve(r, (apply,), 60, clock=at())
    pacing.throttled(r, (apply,), 1.0, first.reserved_ms, clock=at(T + 0.2))
    pace = pacing.pace(r, apply, clock=at(T + 0.2))
    assert (pace.factor, pace.paused_s) == pytest.approx((0.7, 1.0))
    assert pace.rate_per_s == pytest.approx(2 * 0.7 / 1.1)
    assert slots(r, (apply,), 2, T + 0.2) == pytest.approx([1.2, 1.2 + 0.55 / 0.7], abs=1e-3)  # after the pause
    climb = pacing.RECOVERY_PER_MIN  # of the ceiling a minute, once the 429s stop
    minutes = (0.1 / climb, 0.2 / climb, 0.6 / climb, 60)
    assert [pacing.pace(r, apply, clock=at(T + 0.2 + 60 * m)).factor for m in minutes] == pytest.approx(
        [0.8, 0.9, 1.0, 1.0]
    )


def test_429s_for_calls_paced_before_the_last_decrease_lower_nothing_more(r: redis.Redis) -> None:
    apply = LIMITS.apply
    early = [pacing.reserve(r, (apply,), 60, clock=at()) for _ in range(3)]  # three workers' calls in flight
    for n, slot in enumerate(early):
        pacing.throttled(r, (apply,), 1.0, slot.reserved_ms, clock=at(T + 1 + n / 10))
    per_s = pacing.RECOVERY_PER_MIN / 60  # the climb back since the decrease (at T + 1)
    assert pacing.pace(r, apply, clock=at(T + 2)).factor == pytest.approx(0.7 + per_s, abs=1e-3)  # one decrease
    late = pacing.reserve(r, (apply,), 60, clock=at(T + 2))  # paced at the lowered rate, still refused
    pacing.throttled(r, (apply,), 1.0, late.reserved_ms, clock=at(T + 3))
    assert pacing.pace(r, apply, clock=at(T + 3)).factor == pytest.approx((0.7 + 2 * per_s) * 0.7, abs=2e-3)
    for _ in range(20):
        pacing.throttled(r, (apply,), 1.0, clock=at(T + 4))
    assert pacing.pace(r, apply, clock=at(T + 4)).factor == pytest.approx(pacing.FLOOR)  # never to nothing


def test_a_pause_that_began_after_a_slot_was_reserved_voids_the_slot(r: redis.Redis) -> None:
    both = (LIMITS.apply, LIMITS.lever)
    pacing.reserve(r, both, 60, clock=at())
    soon = pacing.reserve(r, both, 60, clock=at())
    assert pacing.paused_past(r, both, soon) == 0.0
    pacing.throttled(r, (LIMITS.lever,), 2.0, clock=at(T + 0.1))  # another worker's call was refused
    assert pacing.paused_past(r, both, soon) == pytest.approx(2.1 - 0.55)
    assert pacing.paused_past(r, (LIMITS.apply,), soon) == 0.0  # the apply limit itself was not paused


def test_workers_reserving_at_once_never_share_a_slot(redis_server: EmbeddedRedis, r: redis.Redis) -> None:
    got: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        conn = connect(redis_server.url)  # each worker its own connection, as on separate machines
        mine = [pacing.reserve(conn, (LIMITS.lever,), 60).at_ms for _ in range(25)]
        conn.close()
        with lock:
            got.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got.sort()
    assert len(got) == 100
    assert min(b - a for a, b in itertools.pairwise(got)) >= 110  # ms: every pair a spacing apart


def test_the_margin_follows_the_lag_every_worker_measures_within_its_bounds(r: redis.Redis) -> None:
    """Calls on time keep the margin at its floor; late wakes widen every worker's spacing at once (the ceiling bounds
    a stall), and it narrows again as calls leave on time."""
    limits = Limits.of(2, 10, 0.03)
    apply = (limits.apply,)
    assert pacing.margin_s(r, limits.apply) == pytest.approx(0.03)
    pacing.lagged(r, [0.0] * 20, apply)
    assert pacing.margin_s(r, limits.apply) == pytest.approx(0.03)  # no lag: the floor
    assert slots(r, apply, 2) == pytest.approx([0, 0.515])
    pacing.lagged(r, [0.040], apply)  # one worker woke 40 ms late
    widened = pacing.margin_s(r, limits.apply)
    assert 0.05 < widened < pacing.MARGIN_CEILING_S
    assert slots(r, apply, 1, T + 10)[0] - 10 == pytest.approx(0, abs=1e-3)
    assert slots(r, apply, 1, T + 10)[0] - 10 == pytest.approx((1 + widened) / 2, abs=2e-3)  # every worker spaces so
    pacing.lagged(r, [5.0], apply)  # a stall of 5 s counts as the ceiling
    assert pacing.margin_s(r, limits.apply) == pytest.approx(pacing.MARGIN_CEILING_S)
    pacing.lagged(r, [0.0] * 60, apply)
    assert pacing.margin_s(r, limits.apply) == pytest.approx(0.03, abs=0.001)  # back to the floor


def test_a_slot_given_up_is_used_by_the_callers_after_it_moving_up(r: redis.Redis) -> None:
    apply = (LIMITS.apply,)
    a, b, c = (pacing.reserve(r, apply, 60, clock=at()) for _ in range(3))  # three workers queued: 0, 0.55, 1.1
    pacing.release(r, apply, a)  # a's process woke 30 ms late: it sends nothing on its slot and queues again
    a = pacing.reserve(r, apply, 60, clock=at(T + 0.03))
    assert a.at_ms / 1000 - T == pytest.approx(1.65)
    b = pacing.move_up(r, apply, b, 0.05, clock=at(T + 0.05))  # the next caller into the hole, 50 ms ahead
    c = pacing.move_up(r, apply, c, 0.05, clock=at(T + 0.1))
    a = pacing.move_up(r, apply, a, 0.05, clock=at(T + 0.15))
    assert [s.at_ms / 1000 - T for s in (b, c, a)] == pytest.approx([0.1, 0.65, 1.2])  # 0.45 s lost, not 0.55
    assert pacing.reserve(r, apply, 60, clock=at(T + 0.2)).at_ms / 1000 - T == pytest.approx(1.75)


def test_a_slot_moves_up_only_as_far_as_every_other_slot_allows(r: redis.Redis) -> None:
    both = (LIMITS.apply, LIMITS.lever)
    a, b = (pacing.reserve(r, both, 60, clock=at()) for _ in range(2))  # applies at 0 and 0.55
    call = pacing.reserve(r, (LIMITS.lever,), 60, clock=at())  # a read between them
    assert pacing.move_up(r, both, b, 0.05, clock=at(T + 0.2)) is b  # nothing given up: nothing moves
    pacing.release(r, both, a)
    moved = pacing.move_up(r, both, b, 0.0, clock=at(T + 0.05))
    assert moved.reserved
    assert moved.at_ms / 1000 - T == pytest.approx(0.22)  # 110 ms after the read, on both limits
    assert slots(r, both, 1, T + 0.05) == pytest.approx([0.77])
    pacing.throttled(r, both, 1.0, clock=at(T + 0.1))  # a 429: no slot moves into the pause
    assert pacing.move_up(r, both, call, 0.0, clock=at(T + 0.1)) is call
