"""Who a sourced opportunity is created as (`perform_as`, its owner in Lever): the recruiter's own Lever user for a
capture, found by their email with List users and cached; JOBSITE_LEVER_PERFORM_AS for a sign-up, or when the
recruiter has no Lever user. With the sandbox and no setting, its first active user."""

from __future__ import annotations

import logging

from ..delivery import sender
from ..delivery.sender import Delivery
from ..keyspace.sourcing_keys import CACHE, SANDBOX_DEFAULT
from ..lever.client import LeverClient, LeverError

log = logging.getLogger(__name__)

CACHE_TTL_S = 86400
UNKNOWN_TTL_S = 3600  # a recruiter without a Lever user is looked up again after this


class NoPerformer(Exception):
    """No Lever user to create the opportunity as (JOBSITE_LEVER_PERFORM_AS is unset and none was found)."""


def perform_as(delivery: Delivery, recruiter: str, lever: LeverClient) -> str:
    """The Lever user id to create as for `recruiter` (an email, or "" for a sign-up). Raises LeverError or
    RateLimitWait from the lookup, NoPerformer when nobody fits."""
    r, s = delivery.redis, delivery.settings
    if recruiter:
        email = recruiter.strip().lower()
        cached = r.get(CACHE.format(email))
        if cached is None:
            found = ""
            try:
                users = lever.list_users(email=email)
                found = next(
                    (
                        str(u["id"])
                        for u in users
                        if str(u.get("email", "")).lower() == email and not u.get("deactivatedAt")
                    ),
                    "",
                )
            except LeverError as e:
                if sender.reading(e) != sender.Action.DO_WITHOUT:
                    raise
                log.warning("the Lever API key may not list users: captures are created as JOBSITE_LEVER_PERFORM_AS")
            r.set(CACHE.format(email), found, ex=CACHE_TTL_S if found else UNKNOWN_TTL_S)
        else:
            found = cached.decode()
        if found:
            return found
    if s.lever_perform_as:
        return s.lever_perform_as
    if not s.uses_sandbox:  # settings refuse this at start-up; kept as a clear error should they change
        raise NoPerformer("JOBSITE_LEVER_PERFORM_AS is not set")
    cached = r.get(SANDBOX_DEFAULT)
    if cached:
        return cached.decode()
    users = [u for u in lever.list_users() if not u.get("deactivatedAt")]
    if not users:
        raise NoPerformer("the sandbox has no active user")
    r.set(SANDBOX_DEFAULT, str(users[0]["id"]), ex=CACHE_TTL_S)
    return str(users[0]["id"])
