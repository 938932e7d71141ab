"""Hourly quotas on the real redis-server, with the clock injected: several units counted all or nothing, the real
wait until the next hour, and an address as limits keep it (IPv6 by its /64)."""

from __future__ import annotations

import pytest
import redis

from jobsite.admission import quotas
from jobsite.admission.addresses import ip_digest, network

T = 1_800_000_000.0 + 600  # ten minutes into an hour
Q = quotas.Quota("test", {"applications": 3, "bytes": 100})


def test_every_unit_is_counted_all_or_nothing_until_the_next_hour(r: redis.Redis) -> None:
    quotas.take(r, Q, "a", {"applications": 1, "bytes": 60}, now=T)
    with pytest.raises(quotas.Exceeded) as e:
        quotas.take(r, Q, "a", {"applications": 1, "bytes": 41}, now=T + 1)
    assert (e.value.unit, e.value.retry_after_s) == ("bytes", 3000 - 1)  # the real wait, not 3600
    quotas.take(r, Q, "a", {"applications": 1, "bytes": 40}, now=T)  # the refused one counted nothing
    quotas.take(r, Q, "b", {"applications": 1, "bytes": 100}, now=T)  # another subject has its own
    quotas.take(r, Q, "a", {"applications": 1, "bytes": 0}, now=T)
    with pytest.raises(quotas.Exceeded, match="applications"):
        quotas.take(r, Q, "a", {"applications": 1, "bytes": 0}, now=T)
    quotas.give_back(r, Q, "a", {"applications": 1}, now=T)
    quotas.take(r, Q, "a", {"applications": 1, "bytes": 0}, now=T)
    quotas.take(r, Q, "a", {"applications": 3, "bytes": 100}, now=T + 3000)  # a new hour


def test_ipv6_counts_by_its_64_and_ipv4_by_the_address() -> None:
    assert network("2001:db8:0:7::1") == network("2001:db8:0:7:ffff:1:2:3") == "2001:db8:0:7::/64"
    assert network("2001:db8:0:8::1") != network("2001:db8:0:7::1")
    assert network("::ffff:203.0.113.7") == network("203.0.113.7") == "203.0.113.7"
    assert network("203.0.113.8") != network("203.0.113.7")
    assert network("unknown") == "unknown"
    assert ip_digest("2001:db8:0:7::1", "k") == ip_digest("2001:db8:0:7::2", "k") != ip_digest("2001:db8::1", "k")
