"""A visitor's address as per-address limits keep it: never the address itself."""

from __future__ import annotations

import hashlib
import hmac


def ip_digest(ip: str, key: str) -> str:
    """A client address as per-address limits keep it in Redis: an HMAC under the site's secret `key`, so no
    address is stored, nor one that could be found again by hashing every IPv4 address."""
    return hmac.new(key.encode(), ip.encode(), hashlib.sha256).hexdigest()[:24]
