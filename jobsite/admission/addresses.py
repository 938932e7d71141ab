"""A visitor's address as per-address limits keep it: never the address itself."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress


def ip_digest(ip: str, key: str) -> str:
    """A client address as per-address limits keep it in Redis: an HMAC under the site's secret `key`, so no
    address is stored, nor one that could be found again by hashing every IPv4 address. IPv6 addresses count by
    their /64 (one subscriber or host gets a whole /64, so keying the full address gives one person 2^64 quotas);
    IPv4 addresses, and IPv4 mapped into IPv6, by the full address."""
    return hmac.new(key.encode(), network(ip).encode(), hashlib.sha256).hexdigest()[:24]


def network(ip: str) -> str:
    """What one visitor's address stands for: an IPv4 address, or the /64 of an IPv6 one."""
    try:
        address = ipaddress.ip_address(ip.strip().split("%", 1)[0])
    except ValueError:
        return ip  # not an address (a unix socket, "unknown"): as it is
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)
