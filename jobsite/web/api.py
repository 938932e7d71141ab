"""The JSON API for company career pages that embed jobsite: postings, forms, applications, their status.

Read endpoints are cacheable and readable from any origin, or only from JOBSITE_EMBED_ORIGINS when it is set; the
application endpoint takes the body shape of Lever's Apply to a posting (JSON), or the form's fields as
multipart/form-data with files. No cookies are used, so there is no ambient authority for another site to abuse.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import redis
from flask import Blueprint, Response, g, jsonify, request
from flask_babel import gettext
from werkzeug.wrappers import Response as BaseResponse

from ..admission import limits
from ..alerts import subscriptions
from ..console import api_keys, audit
from ..intake import resume
from ..intake.forms import ValidationFailed, answers_from_lever_body
from ..postings import board
from ..postings.catalog import PostingNotFound
from ..postings.posting import Posting
from ..services import get_services
from ..sourcing import enrol as sourced
from ..sourcing import people
from ..words import N_
from . import alerting, embed, sourcing, submission
from .candidates import absolute, application_status, host_key
from .errors import error_response
from .i18n import say

bp = Blueprint("api", __name__, url_prefix="/api/v1")
MAX_JSON_BYTES = 256 * 1024  # JSON carries no files: a large body is an attack, not an application

POSTING_FIELDS = (
    "id",
    "text",
    "team",
    "department",
    "locations",
    "commitment",
    "level",
    "workplaceType",
    "country",
    "createdAt",
    "updatedAt",
    "salaryRange",
    "descriptionHtml",
    "lists",
    "closingHtml",
)


# CORS: what a browser on a company's page may send and read. Authorization is not allowed from browsers: an
# integrator key belongs on the company's server, never in a page.
CORS_REQUEST_HEADERS = "Content-Type, Idempotency-Key"
CORS_EXPOSED_HEADERS = "ETag, Retry-After, X-Request-Id"
PREFLIGHT_MAX_AGE_S = 86400  # browsers cache a preflight answer this long (Chromium caps it at 2 hours)


@bp.before_request
def authenticate() -> Any:
    """A CORS preflight is answered at once (`cors` adds the headers). A request with an Authorization header must
    carry a valid integrator key: a wrong or revoked key is a 401, never a silent fallback to anonymous."""
    if request.method == "OPTIONS":
        return Response(status=204)
    g.api_client = None
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, key = header.partition(" ")
    svc = get_services()
    try:
        r = svc.request_redis()  # a silent Redis: a 503 in seconds, not in minutes
        client = api_keys.authenticate(r, key.strip()) if scheme.lower() == "bearer" else None
    except api_keys.KeyRevoked as e:
        audit.record_api(r, e.name, "refused: revoked key", detail=f"{request.method} {request.path}")
        client = None
    except redis.RedisError as e:
        svc.silence.heard(e)
        return error_response(503, "Keys cannot be checked right now. Please retry shortly.", {"Retry-After": "30"})
    if client is None:
        return error_response(
            401,
            "This API key is not valid: it is wrong or was revoked.",
            {"WWW-Authenticate": 'Bearer realm="jobsite", error="invalid_token"'},
        )
    g.api_client = client.name
    return None


@bp.after_request
def audit_client(response: Response) -> Response:
    """Every use of an integrator key lands in the audit log, with the application it created."""
    if g.get("api_client"):
        # The answer stands if Redis is down: /readyz and the metrics report that. On the quick client: the answer
        # waits for this line.
        svc = get_services()
        try:
            audit.record_api(
                svc.request_redis(),
                g.api_client,
                f"{request.method} {request.path}",
                target=g.get("receipt", ""),
                detail=str(response.status_code),
            )
        except redis.RedisError as e:
            svc.silence.heard(e)
    return response


@bp.after_app_request
def cors(response: Response) -> Response:
    """Any origin may read the API (JOBSITE_EMBED_ORIGINS unset), or only the listed ones: the answer then depends
    on Origin, which `Vary` tells caches; another origin gets no CORS header at all."""
    if not request.path.startswith(f"{bp.url_prefix}/"):
        return response
    origins = get_services().settings.embed_origins
    if origins is None:
        response.headers["Access-Control-Allow-Origin"] = "*"
    else:
        response.vary.add("Origin")
        if request.headers.get("Origin") not in origins:
            return response
        response.headers["Access-Control-Allow-Origin"] = request.headers["Origin"]
    response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSED_HEADERS
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = "GET, POST"
        response.headers["Access-Control-Allow-Headers"] = CORS_REQUEST_HEADERS
        response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_S)
    return response


def _json_body() -> Any:
    """The JSON body, read at most MAX_JSON_BYTES (a missing Content-Length cannot get past it); None when it is
    not JSON, too large or nested too deep to parse."""
    raw = request.stream.read(MAX_JSON_BYTES + 1)
    return None if len(raw) > MAX_JSON_BYTES else _loads(raw)


def _loads(raw: str | bytes) -> Any:
    """Parsed JSON, or None when it is not JSON or nested too deep to parse."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def _posting_json(p: Posting) -> dict[str, Any]:
    out = {k: p.get(k) for k in POSTING_FIELDS}
    out["urls"] = {
        "show": absolute("candidates.posting", posting_id=p["id"]),
        "apply": absolute("candidates.apply", posting_id=p["id"]),
        "applications": absolute("api.apply", posting_id=p["id"]),
    }
    return out


@bp.get("/postings")
def postings() -> BaseResponse:
    snap = get_services().catalog.postings()
    query = board.Query.from_args(request.args)
    found = board.search(snap.data, query)
    response = jsonify({"data": [_posting_json(p) for p in found], "count": len(found)})
    response.set_etag(
        hashlib.blake2b("\0".join((snap.version, query.key(), host_key())).encode(), digest_size=10).hexdigest()
    )
    response.headers["Cache-Control"] = "public, max-age=60, stale-while-revalidate=600, stale-if-error=86400"
    return response.make_conditional(request)


@bp.get("/postings/<posting_id>")
def posting(posting_id: str) -> Any:
    try:
        posting_, form = submission.form_for(posting_id)
    except PostingNotFound:
        return error_response(404, "No open posting with this id.")
    data = _posting_json(posting_)
    data["form"] = [
        {
            "title": say(s.title),
            "note": say(s.note),
            "fields": [
                {
                    "name": f.name,
                    "label": say(f.label),
                    "type": f.type,
                    "required": f.required,
                    "description": say(f.description),
                    "options": [{"value": v, "label": say(label)} for v, label in f.options],
                }
                for f in s.fields
            ],
        }
        for s in form.sections
    ]
    return {"data": data}


@bp.post("/postings/<posting_id>/applications")
def apply(posting_id: str) -> Any:
    try:
        posting_, form = submission.form_for(posting_id)
    except PostingNotFound:
        return error_response(404, "No open posting with this id: it may have closed.")
    max_bytes = get_services().settings.max_file_mb * 2**20
    if request.mimetype == "application/json":
        if (request.content_length or 0) > MAX_JSON_BYTES:
            return error_response(
                413,
                f"A JSON application must be under {MAX_JSON_BYTES // 1024} KB: files are sent as multipart/form-data.",
            )
        body = _json_body()
        if not isinstance(body, dict):
            return error_response(400, "The body must be a JSON object shaped like Lever's Apply to a posting.")
        answers, uploads, honeypot = answers_from_lever_body(form, body), {}, str(body.get("website") or "")
        source = embed.attribution(body)
    elif request.mimetype == "multipart/form-data":
        if "application" in request.form:
            body = _loads(request.form["application"])
            if body is None:
                return error_response(400, "The 'application' part must be JSON (and not nested too deep).")
            answers = answers_from_lever_body(form, body) if isinstance(body, dict) else {}
            source = embed.attribution(body if isinstance(body, dict) else {})
        else:
            answers = submission.answers_from(request.form, form)
            source = embed.attribution(request.form)
        uploads = submission.uploads_from(request.files, form, max_bytes)
        honeypot = request.form.get("website", "")
    else:
        return error_response(415, "Send application/json or multipart/form-data.")
    try:
        receipt = submission.receive(
            posting_,
            form,
            answers,
            uploads,
            idempotency_key=request.headers.get("Idempotency-Key") or None,
            honeypot=honeypot,
            attribution=source,
        )
    except ValidationFailed as e:
        return error_response(422, gettext("Some answers need attention."), errors=say(e.errors))
    except submission.Rejected as e:
        return error_response(e.status, e.message, e.headers)
    g.receipt = receipt.receipt
    status_url = absolute("api.application", receipt=receipt.receipt)
    return {"receipt": receipt.receipt, "status": receipt.status, "status_url": status_url}, 202


@bp.post("/autofill")
def autofill() -> Any:
    """The name, email, phone and links in a resume (multipart part `resume`), to fill the form as soon as the
    candidate chooses the file: read in memory, stored nowhere, limited per address like applications."""
    svc = get_services()
    max_bytes = svc.settings.max_file_mb * 2**20
    if request.mimetype != "multipart/form-data" or "resume" not in request.files:
        return error_response(400, "Send the resume as multipart/form-data in a part named 'resume'.")
    if g.api_client:  # an integrator's backend sends from one address: its key is the limit there, counted apart
        try:
            # never waits for Redis
            limits.check_client(svc.admission, g.api_client, counter="apiclient_autofill")
        except limits.TooManyFromClient as e:
            return error_response(
                429,
                f"This API client had more than {svc.settings.api_client_per_hour} resumes read this hour.",
                {"Retry-After": str(e.retry_after_s)},
            )
    else:
        try:
            limits.check_ip(svc.admission, request.remote_addr or "unknown", counter="autofill")
        except limits.TooManySubmissions:
            return error_response(
                429,
                "Too many resumes from your network in the last hour. Please try again later.",
                {"Retry-After": "3600"},
            )
    content = request.files["resume"].stream.read(max_bytes + 1)
    for storage in request.files.values():
        storage.close()  # large parts are spooled to temporary files
    if len(content) > max_bytes:
        return error_response(413, f"The resume must be under {svc.settings.max_file_mb} MB.")
    try:
        found = resume.read(content)
    except resume.Unreadable:
        return error_response(415, "We read PDF, Word (docx), OpenDocument (odt) and plain text resumes.")
    except resume.Broken:
        return error_response(422, "We could not read this resume: please fill in the form yourself.")
    except resume.Busy:
        return error_response(
            503, "We are reading many resumes right now: please try again in a moment.", {"Retry-After": "5"}
        )
    return found.to_json()


@bp.get("/applications/<receipt>")
def application(receipt: str) -> Any:
    status = application_status(receipt)
    if status is None:
        return error_response(404, "No application with this receipt.")
    status.pop("posting_title", None)
    response = jsonify(status)
    response.headers["Cache-Control"] = "no-store"
    return response


# The talent community (sourcing): the same attribution, Idempotency-Key, limits and 422s as an application.


@bp.post("/talent")
def join_talent() -> Any:
    sourcing.enabled()
    if request.mimetype == "application/json":
        if (request.content_length or 0) > MAX_JSON_BYTES:
            return error_response(
                413,
                f"A JSON sign-up must be under {MAX_JSON_BYTES // 1024} KB: a resume is sent as multipart/form-data.",
            )
        body = _json_body()
        if not isinstance(body, dict):
            return error_response(400, "The body must be a JSON object.")
        interests = body.get("interests")
        if interests is not None and not isinstance(interests, dict):
            return error_response(
                422, gettext("Some answers need attention."), errors=say({"interests": N_("Choose from the list.")})
            )
        interests = interests or {}
        consent = body.get("consent")
        data = {
            **body,
            "teams": interests.get("teams", []),
            "locations": interests.get("locations", []),
            "consent": consent.get("store") if isinstance(consent, dict) else consent,
        }
        resume = None
    elif request.mimetype == "multipart/form-data":
        f = request.form
        data = {
            "name": f.get("name"),
            "email": f.get("email"),
            "phone": f.get("phone"),
            "links": f.getlist("links"),
            "teams": f.getlist("teams"),
            "locations": f.getlist("locations"),
            "consent": f.get("consent"),
            "alerts": f.get("alerts"),
        }
        resume = sourcing.resume_from(request.files.get("resume"))
    else:
        return error_response(415, "Send application/json or multipart/form-data.")
    try:
        joined = sourcing.join(
            data,
            resume,
            idempotency_key=request.headers.get("Idempotency-Key") or None,
            attribution=embed.attribution(data),
            honeypot=str(data.get("website") or ""),
        )
    except sourced.Invalid as e:
        return error_response(422, gettext("Some answers need attention."), errors=say(e.errors))
    except submission.Rejected as e:
        return error_response(e.status, e.message, e.headers)
    if data.get("alerts") in (True, "true", "on", "yes", "1"):
        alerting.with_sign_up(joined.person, new=joined.new)
    g.receipt = joined.person.id
    return {
        "receipt": joined.person.id,
        "status": sourcing.status_of(joined.person),
        "status_url": absolute("api.talent_status", receipt=joined.person.id),
    }, 202


@bp.get("/talent/<receipt>")
def talent_status(receipt: str) -> Any:
    sourcing.enabled()
    person = people.load(get_services().redis, receipt) if receipt.isalnum() else None
    if person is None or person.kind != people.Kind.TALENT:
        return error_response(404, "No sign-up with this receipt.")
    response = jsonify({"receipt": receipt, "status": sourcing.status_of(person)})
    response.headers["Cache-Control"] = "no-store"
    return response


# Job alerts for embedders: the same double opt-in as the job list's "Email me jobs like these" (web/alert_pages.py).


@bp.post("/alerts")
def ask_for_alerts() -> Any:
    """Ask for job alerts for an address: 202 whatever the address holds (a stranger learns nothing of it); only
    the confirmation email goes out, and only its link starts the alerts."""
    if not alerting.offered():
        return error_response(404, "This site sends no email (JOBSITE_SMTP_URL is not set), so it offers no alerts.")
    if request.mimetype != "application/json":
        return error_response(415, "Send application/json.")
    if (request.content_length or 0) > MAX_JSON_BYTES:
        return error_response(413, f"A request for alerts must be under {MAX_JSON_BYTES // 1024} KB.")
    body = _json_body()
    if not isinstance(body, dict):
        return error_response(400, "The body must be a JSON object.")
    email, frequency, lang = body.get("email"), body.get("frequency", "daily"), body.get("language")
    filters = body.get("filters") or {}
    errors: dict[str, str] = {}
    email, frequency = email if isinstance(email, str) else "", frequency if isinstance(frequency, str) else ""
    try:
        subscriptions.validate(email, frequency)
    except subscriptions.Invalid as e:
        errors.update(e.errors)
    if (
        not isinstance(filters, dict)
        or set(filters) - set(subscriptions.FILTERS)
        or not all(v is None or isinstance(v, str) for v in filters.values())
    ):
        errors["filters"] = N_(
            "Filters are an object of strings: team, department, location, commitment, workplace, q."
        )
    if lang is not None and lang not in subscriptions.LANGUAGES:
        errors["language"] = N_("The language must be one of en, de, fr.")
    try:
        if errors:
            raise subscriptions.Invalid(errors)
        alerting.ask(email, filters, frequency, lang=lang)
    except subscriptions.Invalid as e:
        return error_response(422, gettext("Some answers need attention."), errors=say(e.errors))
    except submission.Rejected as e:
        return error_response(e.status, e.message, e.headers)
    return {"status": "confirmation_sent"}, 202
