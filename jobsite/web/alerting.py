"""Asking for job alerts, shared by the alert pages, the API, the talent community and the application form: the
caps (per visitor address or API client per hour, the whole site's JOBSITE_SIGNUPS_PER_HOUR, and the store's few
pending confirmations per mailbox), then alerts/subscriptions.py.

Asking costs an email to the address, so a stranger's asks are capped, and the answer is the same whatever the
address holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis
from flask import abort, request
from flask_babel import gettext

from ..admission import limits, quotas
from ..alerts import subscriptions
from ..alerts.subscriptions import Subscription
from ..notify import messages
from ..postings.posting import Posting
from ..services import get_services
from ..sourcing.people import Person
from .i18n import language
from .security import current_client
from .submission import Rejected


def offered() -> bool:
    """Whether the site offers job alerts: only when it can send email (the confirmation, then the alerts)."""
    return messages.switch(get_services().settings).on


def enabled() -> None:
    """404 unless the site offers job alerts."""
    if not offered():
        abort(404)


def ask(
    email: str, filters: Mapping[str, Any], frequency: str, *, lang: str | None = None, along: str | None = None
) -> Subscription:
    """Ask for alerts for `email` after the caps (per client or visitor address, then the site's). Returns the
    subscription, new or the address's same one (the caller answers the same either way). With `along`, confirmed
    with that talent sign-up (subscriptions.subscribe).

    Raises:
        subscriptions.Invalid: per field; Rejected: a cap is reached, or Redis cannot take it now.
    """
    svc = get_services()
    subscriptions.validate(email, frequency, lang or language())
    _limit()
    try:
        # The quick client of a request: the process's own would hold a candidate whose application is already
        # spooled (Redis silent) for minutes of timeouts and retries before this answers.
        return subscriptions.subscribe(
            svc.request_redis(), email, filters, frequency, lang or language(), along=along
        ).subscription
    except redis.RedisError as e:
        svc.silence.heard(e)
        raise Rejected(
            503,
            gettext("We can't take this for a few minutes, so nothing was saved. Please try again in a few minutes."),
            {"Retry-After": "60"},
        ) from None


def _limit() -> None:
    svc = get_services()
    client = current_client()
    try:
        if client:
            limits.check_client(svc.admission, client, counter="apiclient_alerts")
        else:
            limits.check_ip(svc.admission, request.remote_addr or "unknown", counter="alerts")
        quotas.take(
            svc.request_redis(),
            quotas.Quota("alerts", {"alerts": svc.settings.signups_per_hour}),
            "site",
            {"alerts": 1},
        )
    except (limits.TooManySubmissions, quotas.Exceeded) as e:
        raise Rejected(
            429,
            gettext("We received many requests for alerts in the last hour. Please try again later."),
            {"Retry-After": str(e.retry_after_s)},
        ) from None
    except redis.RedisError as e:
        svc.silence.heard(e)  # the store's write then answers 503


def similar(posting: Posting) -> dict[str, str]:
    """The alert of "tell me about similar jobs" on a posting's form: its team (else its department), and its
    location when it has one."""
    found = (
        {"team": posting.get("team") or ""} if posting.get("team") else {"department": posting.get("department") or ""}
    )
    if len(posting.get("locations") or []) == 1:
        found["location"] = posting["locations"][0]
    return {k: v for k, v in found.items() if v}


def for_interests(teams: list[str], locations: list[str]) -> list[dict[str, str]]:
    """The alerts of a talent sign-up's interests: one per team and location chosen together while they are few,
    else per team, else per location (at most the store's pending cap), else one for every new job."""
    most = subscriptions.MAX_PENDING_PER_ADDRESS
    pairs = [{"team": t, "location": p} for t in teams for p in locations]
    if pairs and len(pairs) <= most:
        return pairs
    if teams:
        return [{"team": t} for t in teams[:most]]
    if locations:
        return [{"location": p} for p in locations[:most]]
    return [{}]


def ask_quietly(email: str, filters_list: list[dict[str, str]], frequency: str, *, along: str | None = None) -> int:
    """Ask for alerts as a side choice of another form (the application, the talent sign-up), which has succeeded
    already: a cap or an unusable address only means no alert. Returns how many were asked for."""
    asked = 0
    for filters in filters_list:
        try:
            ask(email, filters, frequency, along=along)
        except (subscriptions.Invalid, Rejected):
            break
        asked += 1
    return asked


def with_sign_up(person: Person, *, new: bool) -> int:
    """Job alerts for a talent sign-up's interests, asked for with it (the page's box, the API's `alerts`):
    confirmed with the sign-up's own opt-in, so one email confirms both. Nothing for a confirmed member's
    address (anyone may type it). Returns how many were asked for."""
    if not offered() or not (new or person.unconfirmed):
        return 0
    return ask_quietly(
        person.email,
        for_interests(person.teams, person.locations),
        "weekly",
        along=person.id if person.unconfirmed else None,
    )
