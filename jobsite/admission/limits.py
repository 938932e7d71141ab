"""The hourly limits on what strangers send, for every flow that takes it: per address (applications, sign-ups, the
resumes read to fill a form: a count and the bytes of files) and for the whole site (sign-ups). Redis down never
refuses a submission for a limit alone."""

from __future__ import annotations

import logging

import redis

from .. import metrics
from . import quotas
from .addresses import ip_digest
from .inputs import Admission

log = logging.getLogger(__name__)

CHANGES_PER_HOUR = 20  # a talent member's changes on their manage page per clock hour: each may cost Lever calls


class TooManySubmissions(Exception):
    """This address (an IPv6 /64) sent more applications, or more bytes of files, this hour than allowed: try
    again in `retry_after_s` seconds."""

    def __init__(self, retry_after_s: int):
        super().__init__(retry_after_s)
        self.retry_after_s = retry_after_s


class TooManySignups(TooManySubmissions):
    """The site took JOBSITE_SIGNUPS_PER_HOUR sign-ups this hour, from whatever addresses."""


def check_ip(a: Admission, ip: str, files_bytes: int = 0, *, counter: str = "submissions") -> None:
    """Count a submission from `ip` with `files_bytes` of files; raise TooManySubmissions above the hourly limits
    of either (a count alone let one address park 30 applications of 20 MB an hour in Redis during maintenance).
    `counter` keeps another count under the same limits: "autofill", the resumes read to fill a form.
    With Redis down the limit is skipped (an application must never be refused for that), logged and counted."""
    quota = quotas.Quota(
        counter, {"applications": a.submissions_per_ip_per_hour, "bytes": a.submission_bytes_per_ip_per_hour}
    )
    try:
        quotas.take(a.quick(), quota, ip_digest(ip, a.secret_key), {"applications": 1, "bytes": files_bytes})
    except quotas.Exceeded as e:
        raise TooManySubmissions(e.retry_after_s) from None
    except redis.RedisError as e:
        a.heard(e)
        log.warning("per-address submission limit skipped: Redis unreachable (%s)", type(e).__name__)
        metrics.count_in_process("jobsite_ip_limit_skipped_total")


def check_signups(a: Admission) -> None:
    """Count a sign-up against the site's hourly limit: a flood from many addresses (a /48 holds 65,536 /64s) stays
    within JOBSITE_SIGNUPS_PER_HOUR, so Lever's budget stays the candidates'. Raises TooManySignups; never refuses
    for Redis alone (the submission then meets Redis itself)."""
    try:
        # The quick client, as the per-address limit: a silent Redis cost each sign-up 10 s and retries here (18.7 s
        # answers in the nemesis); now one short timeout, and none while the silence is known.
        quotas.take(a.quick(), quotas.Quota("signups", {"signups": a.signups_per_hour}), "site", {"signups": 1})
    except quotas.Exceeded as e:
        raise TooManySignups(e.retry_after_s) from None
    except redis.RedisError as e:
        a.heard(e)


class TooManyFromClient(TooManySubmissions):
    """This API client (an integrator's backend, all from one address) sent more than JOBSITE_API_CLIENT_PER_HOUR
    this hour."""


def check_client(a: Admission, name: str, *, counter: str = "apiclient") -> None:
    """Count a submission from the API client `name`, which has its own limit instead of its address's; raise
    TooManyFromClient above JOBSITE_API_CLIENT_PER_HOUR in this clock hour. `counter` keeps another count under the
    same limit: "apiclient_autofill", the resumes it had read. Never refuses for Redis alone."""
    try:
        quotas.take(
            a.quick(), quotas.Quota(counter, {"applications": a.api_client_per_hour}), name, {"applications": 1}
        )
    except quotas.Exceeded as e:
        raise TooManyFromClient(e.retry_after_s) from None
    except redis.RedisError as e:
        a.heard(e)


class TooManyChanges(TooManySubmissions):
    """This talent member changed their interests or subscription CHANGES_PER_HOUR times this hour."""


def check_changes(a: Admission, person_id: str) -> None:
    """Count a change a member makes on their manage page (anyone holding the link): raise TooManyChanges above
    CHANGES_PER_HOUR in this clock hour, since each may cost Lever calls. Withdrawing consent is never counted (it
    happens once). Never refuses for Redis alone."""
    try:
        quotas.take(a.quick(), quotas.Quota("talent_changes", {"changes": CHANGES_PER_HOUR}), person_id, {"changes": 1})
    except quotas.Exceeded as e:
        raise TooManyChanges(e.retry_after_s) from None
    except redis.RedisError as e:
        a.heard(e)
