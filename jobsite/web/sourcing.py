"""Receiving sourced people from the web, shared by the /talent page, POST /api/v1/talent and the console's capture
endpoint: the same per-address and per-client limits, memory guard and idempotency as applications (admission/),
then sourcing/enrol.py."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis
from flask import abort, request
from flask_babel import gettext
from werkzeug.datastructures import FileStorage

from ..admission import limits, memory
from ..admission.idempotency import Idempotency
from ..postings import board
from ..records.application import Attribution
from ..records.uploads import UploadedFile
from ..services import get_services
from ..sourcing import enrol
from ..sourcing.events import Event
from ..sourcing.people import Person, Standing
from .i18n import language
from .security import current_client
from .submission import KeyReused, Rejected, refuse_automated

# A sourced person's public status, in the words of an application's (the receipt page and the API share them).
STATUS = {
    Standing.WAITING: "queued",
    Standing.DELIVERING: "delivering",
    Standing.DELIVERED: "delivered",
    Standing.NEEDS_ATTENTION: "needs_attention",
}


def enabled() -> None:
    """404 unless sourcing is on (JOBSITE_SOURCING)."""
    if not get_services().settings.sourcing:
        abort(404)


def interests() -> tuple[list[str], list[str]]:
    """The teams and locations a person may be interested in: those of the open postings."""
    facets = board.facets(get_services().catalog.postings().data)
    return list(facets["team"]), list(facets["location"])


def resume_from(storage: FileStorage | None) -> UploadedFile | None:
    """The uploaded resume, read at most one byte past the limit."""
    if storage is None or not storage.filename:
        return None
    max_bytes = get_services().settings.max_file_mb * 2**20
    try:
        return UploadedFile(storage.filename, storage.stream.read(max_bytes + 1))
    finally:
        storage.close()


def status_of(person: Person) -> str:
    """The public status; "unconfirmed" for a sign-up waiting for its address to be confirmed."""
    return "unconfirmed" if person.unconfirmed else STATUS[person.standing]


def join(
    data: Mapping[str, Any],
    resume: UploadedFile | None,
    *,
    idempotency_key: str | None,
    attribution: Attribution | None,
    honeypot: str = "",
) -> enrol.Accepted:
    """A talent-community sign-up. Raises enrol.Invalid (per field), KeyReused or Rejected."""
    svc = get_services()
    refuse_automated(honeypot)
    teams, locations = interests()
    person = enrol.talent_signup(
        data,
        resume,
        teams=teams,
        locations=locations,
        max_file_bytes=svc.settings.max_file_mb * 2**20,
        attribution=attribution,
    )
    person.language = language()  # the opt-in email's
    client = current_client() or ""
    idem = enrol.idempotency_key(idempotency_key, person, resume, client) if idempotency_key else None
    _limit(client, len(resume.content) if resume else 0)
    return _submit(person, resume, idem)


def capture(data: Mapping[str, Any], event: Event, recruiter: str) -> enrol.Accepted:
    """A recruiter's capture at an event (the console checked who may). Raises enrol.Invalid or Rejected."""
    return _submit(enrol.event_capture(data, event, recruiter), None, None)


def _limit(client: str, files_bytes: int) -> None:
    """The per-client or per-address limit, then the site's (admission/limits.py)."""
    _limit_sender(client, files_bytes)
    try:
        limits.check_signups(get_services().admission)
    except limits.TooManySignups as e:
        raise Rejected(
            429,
            gettext("We received many sign-ups in the last hour. Please try again later."),
            {"Retry-After": str(e.retry_after_s)},
        ) from None


def _limit_sender(client: str, files_bytes: int) -> None:
    svc = get_services()
    if client:
        try:
            limits.check_client(svc.admission, client)
        except limits.TooManyFromClient as e:
            raise Rejected(
                429,
                f"This API client sent more than {svc.settings.api_client_per_hour} submissions this hour.",
                {"Retry-After": str(e.retry_after_s)},
            ) from None
        return
    try:
        limits.check_ip(svc.admission, request.remote_addr or "unknown", files_bytes)
    except limits.TooManySubmissions as e:
        raise Rejected(
            429,
            gettext("We received many submissions from your network in the last hour. Please try again later."),
            {"Retry-After": str(e.retry_after_s)},
        ) from None


def _submit(person: Person, resume: UploadedFile | None, idem: Idempotency | None) -> enrol.Accepted:
    svc = get_services()
    try:
        memory.check_room(svc.admission, len(resume.content) if resume else 0)
        return enrol.submit(svc.enrolment, person, resume, idem)
    except enrol.KeyReused:
        raise KeyReused() from None
    except (memory.RedisFull, redis.RedisError):
        raise Rejected(
            503,
            gettext(
                "We can't take this for a few minutes, so nothing was sent yet. Please try again in a few minutes."
            ),
            {"Retry-After": str(memory.FULL_RETRY_AFTER_S)},
        ) from None
