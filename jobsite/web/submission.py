"""Receiving an application from the web, shared by the HTML form and the JSON API: look up the posting's form,
validate the answers, limit abuse, hand the application to intake."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import request
from flask_babel import gettext
from werkzeug.datastructures import FileStorage, MultiDict

from ..admission import limits
from ..admission.idempotency import Idempotency, IdempotencyConflict
from ..admission.memory import RedisFull
from ..intake import accept
from ..intake.fieldtypes import Choice
from ..intake.forms import Form, build_form, validate
from ..postings.posting import Posting
from ..records.application import Attribution
from ..records.uploads import UploadedFile
from ..services import get_services
from .i18n import language
from .security import current_client


class Rejected(Exception):
    """A submission refused as a whole (not field by field): `status` and a message for the candidate."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


FORMS_KEPT = 256  # postings whose built form this process keeps (each a few KB)
_forms: dict[tuple[str, str], Form] = {}


def form_for(posting_id: str) -> tuple[Posting, Form]:
    """The posting and its form (PostingNotFound for an unknown or closed posting). The form is built once per
    version of the posting's questions in this process (a cache: building it was 3 % of a submission's CPU)."""
    catalog = get_services().catalog
    posting = catalog.posting(posting_id)
    questions = catalog.questions(posting)
    key = (posting_id, questions.version)
    form = _forms.get(key)
    if form is None:
        if len(_forms) >= FORMS_KEPT:
            _forms.clear()
        form = _forms[key] = build_form(questions.data)
    return posting, form


def answers_from(form_data: MultiDict[str, str], form: Form) -> dict[str, Any]:
    """Form fields as answers: lists for multiple-select fields, strings otherwise."""
    answers: dict[str, Any] = {}
    for f in form.fields():
        if f.kind.choice == Choice.MANY:
            answers[f.name] = form_data.getlist(f.name)
        elif f.name in form_data:
            answers[f.name] = form_data.get(f.name)
    if "consent[store]" in form_data:
        answers["consent[store]"] = form_data.get("consent[store]")
    return answers


def uploads_from(files: MultiDict[str, FileStorage], form: Form, max_bytes: int) -> dict[str, UploadedFile]:
    """Uploaded files of the form's file fields, read at most one byte past the limit."""
    out = {}
    for f in form.fields():
        storage = files.get(f.name) if f.kind.file else None
        if storage is not None and storage.filename:
            out[f.name] = UploadedFile(storage.filename, storage.stream.read(max_bytes + 1))
    for storage in files.values():
        storage.close()  # large uploads are spooled to temporary files
    return out


class KeyReused(Rejected):
    """The idempotency key came earlier with a different application: a 422, never the other application's receipt."""

    def __init__(self) -> None:
        super().__init__(
            422,
            "This Idempotency-Key was already used for a different application, so nothing was "
            "sent. Use a new key for each application.",
        )


def receive(
    posting: Posting,
    form: Form,
    answers: Mapping[str, Any],
    uploads: Mapping[str, UploadedFile],
    *,
    idempotency_key: str | None,
    honeypot: str = "",
    attribution: Attribution | None = None,
) -> accept.Receipt:
    """Validate and hand over to intake. Raises ValidationFailed (field errors) or Rejected. `attribution` says where
    the candidate came from (source, utm_* parameters, referring site), for Lever and the pipeline report.

    The honeypot and validation come first, so a replayed key never vouches for a bad submission; the key is scoped
    to the integrator that sent it, the posting and the application's content (KeyReused when they differ)."""
    svc = get_services()
    refuse_automated(honeypot)
    application = validate(form, answers, uploads, svc.settings.max_file_mb * 2**20)
    client = current_client()
    idem = Idempotency.of(idempotency_key, application, uploads, client or "") if idempotency_key else None
    try:
        earlier = accept.previous(svc.intake, idem)
        if earlier:
            return earlier
    except IdempotencyConflict:
        raise KeyReused() from None
    if client:  # an integrator's backend: all from one address, so its own limit instead of the address's
        _count_client(client)
    else:
        try:
            files_bytes = sum(len(u.content) for u in uploads.values())
            limits.check_ip(svc.admission, request.remote_addr or "unknown", files_bytes)
        except limits.TooManySubmissions as e:
            raise Rejected(
                429,
                gettext("We received many applications from your network in the last hour. Please try again later."),
                {"Retry-After": str(e.retry_after_s)},
            ) from None
    try:
        return accept.submit(
            svc.intake,
            application,
            uploads,
            posting_title=posting["text"],
            idempotency=idem,
            attribution=attribution,
            client=client or "",
            language=language(),
        )
    except IdempotencyConflict:  # the same key raced in with another application
        raise KeyReused() from None
    except (RedisFull, accept.NowhereToKeep) as e:
        raise Rejected(
            503,
            gettext(
                "We can't take applications for a few minutes, so nothing was sent yet. Your "
                "answers are still here: please try again in a few minutes."
            ),
            {"Retry-After": str(e.retry_after_s)},
        ) from None


def refuse_automated(honeypot: str) -> None:
    """A filled honeypot field (hidden from people, filled by bots): a 400, before anything is checked or kept."""
    if honeypot:
        raise Rejected(
            400,
            gettext(
                "This submission looked automated, so it was not sent. If you are a person, "
                "please reload the page and try again."
            ),
        )


def _count_client(client: str) -> None:
    svc = get_services()
    try:
        limits.check_client(svc.admission, client)  # as the per-address limit: never refused for Redis alone
    except limits.TooManyFromClient as e:
        raise Rejected(
            429,
            f"This API client sent more than {svc.settings.api_client_per_hour} applications this hour.",
            {"Retry-After": str(e.retry_after_s)},
        ) from None
