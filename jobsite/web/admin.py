"""The recruiters' console: sign-in, dashboard, applications, actions, controls. Viewers read; admins act."""

from __future__ import annotations

import functools
import hashlib
import hmac
import io
import json
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from markupsafe import Markup
from werkzeug.wrappers import Response as BaseResponse

from ..admission.addresses import ip_digest
from ..alerts import digest as alert_digest
from ..alerts import fanout as alert_fanout
from ..alerts import subscriptions as alert_subscriptions
from ..console import accounts, audit, dashboard
from ..delivery import deliverer, gate, jobs
from ..followup import report, tagging
from ..notify import messages, sending
from ..postings.catalog import CatalogUnavailable, PostingNotFound
from ..privacy import lookup
from ..records import contacts, store, uploads
from ..records.application import custom_name
from ..records.store import State
from ..services import get_services
from ..sourcing import enrol as sourced
from ..sourcing import events, people
from . import sourcing, submission
from .security import check_csrf

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
def load_user() -> Any:
    g.user = None
    email, sid = session.get("user"), session.get("sid")
    if isinstance(email, str) and isinstance(sid, str):
        # The quick client: a silent Redis makes the console a 503 in seconds (web/errors.py), not in minutes.
        g.user = accounts.session_user(get_services().request_redis(), email, sid)
    if request.method == "POST":
        check_csrf()
    if g.user is None and request.endpoint not in ("admin.login",):
        if request.path.startswith("/admin/api/"):
            return jsonify({"error": "Unauthorized", "message": "Sign in first."}), 401
        # full_path always ends in "?" (Werkzeug adds it even without a query), so use it only when there is one.
        here = request.full_path if request.query_string else request.path
        return redirect(url_for("admin.login", next=here if request.method == "GET" else None))
    return None


def admin_only(view: Callable[..., Any]) -> Callable[..., Any]:
    """Actions need the admin role; viewers get a 403."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not g.user or not g.user.is_admin:
            abort(403, "Your account can view but not act. Ask an admin.")
        return view(*args, **kwargs)

    return wrapped


def who() -> str:
    return g.user.email


@bp.context_processor
def vocabulary() -> dict[str, Any]:
    """Every console page names states with the same words, in the same order (store.State); "Open in Lever" links
    start at `lever_app` (Lever's web app, Settings.lever_app_url); `reference` is what a person reads out to us."""
    return {"states": list(State), "lever_app": get_services().settings.lever_app_url, "reference": store.reference}


@bp.app_template_filter("counted")
def counted(n: int, noun: str, plural: str = "") -> str:
    """A count that reads as English: "1 application", "2 applications", "3 opportunities" (`plural` when not +s)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


@bp.app_template_filter("when")
def when(ts: float | None) -> Markup:
    """A <time> in UTC with the zone named; admin.js shows it in the viewer's own time zone, zone named too."""
    if not ts:
        return Markup("—")
    moment = datetime.fromtimestamp(ts, UTC)
    return Markup('<time datetime="{}">{}</time>').format(moment.strftime("%Y-%m-%dT%H:%M:%SZ"), when_text(ts))


@bp.app_template_filter("when_text")
def when_text(ts: float | None) -> str:
    """The same moment as plain text, for places that hold no markup (an SVG <title>)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC") if ts else "—"


@bp.app_template_filter("hour_utc")
def hour_utc(ts: float) -> str:
    """A chart tick: the hour of the day in UTC, 14:00."""
    return datetime.fromtimestamp(ts, UTC).strftime("%H:00")


@bp.app_template_filter("duration")
def duration(seconds: float | None) -> str:
    """A short human duration: 45 s, 12 min, 3 h 20 min, 2 d 4 h."""
    if seconds is None:
        return "—"
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


# Sign-in


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    error = None
    status = 200
    typed = request.form.get("email", "")[:254]  # kept in the form after a failure, and named in the audit log
    if request.method == "POST":
        svc = get_services()
        try:
            address = ip_digest(request.remote_addr or "unknown", svc.settings.secret_key)
            user = accounts.authenticate(
                svc.redis,
                typed,
                request.form.get("password", ""),
                address,
                failures_per_hour=svc.settings.signin_failures_per_ip_per_hour,
            )
        except accounts.Throttled as e:
            wait = f"{e.retry_after} seconds" if e.retry_after < 120 else f"{e.retry_after // 60} minutes"
            error = f"Too many failed sign-ins from here. Wait {wait} and try again."
            audit.record(svc.redis, typed, "sign-in refused: too many failures from one address")
            return (
                render_template("admin/login.html", error=error, email=typed),
                429,
                {"Retry-After": str(e.retry_after)},
            )
        if user:
            session.clear()
            session.permanent = True
            session.update(user=user.email, sid=accounts.open_session(svc.redis, user.email))
            audit.record(svc.redis, user.email, "sign-in")
            target = request.args.get("next") or ""
            return redirect(target if target.startswith("/admin") else url_for("admin.dashboard_page"))
        error, status = "That email and password do not match an account.", 401
        audit.record(svc.redis, typed, "sign-in failed")
    return render_template("admin/login.html", error=error, email=typed), status


@bp.post("/logout")
def logout() -> Any:
    """Ends this session in Redis too, so a copy of the cookie is worth nothing."""
    r = get_services().redis
    accounts.close_session(r, who(), session["sid"])
    audit.record(r, who(), "sign-out")
    session.clear()
    return _signed_out()


@bp.post("/logout-everywhere")
def logout_everywhere() -> Any:
    """Ends every session of this account, on every device."""
    r = get_services().redis
    accounts.close_all_sessions(r, who())
    audit.record(r, who(), "sign-out everywhere")
    session.clear()
    return _signed_out()


def _signed_out() -> BaseResponse:
    """To the sign-in page, with this browser's storage and caches for the site cleared: on a phone shared at a
    booth, the capture page's service worker, cached pages and outbox (names, emails, notes) go with the session.
    Browsers honour Clear-Site-Data on HTTPS and localhost only; elsewhere the outbox is still keyed by recruiter."""
    answer = redirect(url_for("admin.login"))
    answer.headers["Clear-Site-Data"] = '"cache", "storage"'
    return answer


# Dashboard


@bp.get("/")
def dashboard_page() -> Any:
    svc = get_services()
    hist = dashboard.history(svc.board)
    peak = max([1] + [max(h["submitted"], h["delivered"]) for h in hist])
    now = time.time()
    talent, captured = people.joined_between(svc.redis, now - 86400, now + 1)
    return render_template(
        "admin/dashboard.html",
        s=dashboard.status(svc.board),
        history=hist,
        peak=peak,
        cache=svc.catalog.info(),
        talent=talent,
        captured=captured,
        mail=messages.switch(svc.settings),
        received=sum(h["submitted"] for h in hist),
        delivered=sum(h["delivered"] for h in hist),
    )


@bp.get("/api/status")
def status_json() -> Any:
    return jsonify(dashboard.status(get_services().board))


# Applications


@bp.get("/applications")
def applications_page() -> Any:
    svc = get_services()
    r = svc.redis
    state = request.args.get("state", "")
    posting = request.args.get("posting", "").strip()
    since, until = _date(request.args.get("from")), _date(request.args.get("to"), end=True)
    if state and state not in {s.value for s in State}:
        abort(400, "Unknown state.")
    records = store.load_many(r, store.receipts_between(r, State(state) if state else None, since, until, 500))
    if posting:
        records = [rec for rec in records if posting.lower() in (rec.posting_title + rec.posting_id).lower()]
    return render_template(
        "admin/applications.html",
        records=records[:200],
        states=list(State),
        state=state,
        posting=posting,
        counts=store.counts(r),
        args=request.args,
    )


def _date(value: str | None, end: bool = False) -> float | None:
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        abort(400, "Dates look like 2026-01-31.")
    return day.timestamp() + (86400 if end else 0)


def _record_or_404(receipt: str) -> store.Record:
    record = store.load(get_services().redis, receipt)
    if record is None:
        abort(404, "No application with this receipt.")
    return record


@bp.get("/applications/<receipt>")
def application_page(receipt: str) -> Any:
    svc = get_services()
    record = _record_or_404(receipt)
    return render_template(
        "admin/application.html",
        rec=record,
        attempts=store.attempts(svc.redis, receipt),
        audit=audit.entries(svc.redis, 50, target=receipt),
        labels=_labels(record.posting_id),
        custom_name=custom_name,
        mail=sending.state(svc.redis, receipt),
        mail_on=svc.settings.smtp is not None,
    )


@bp.get("/search")
def search_page() -> Any:
    """One box for everything a person may be known by: a reference read out on the phone (any case, dash or not),
    an exact email, the words of a name, or a receipt; applications and sourced people alike."""
    svc = get_services()
    q = request.args.get("q", "").strip()[:200]
    found = lookup.find(svc.redis, q) if q else lookup.Found([], [])
    return render_template("admin/search.html", q=q, found=found, titles=_posting_titles())


@bp.get("/people/<contact_id>")
def person(contact_id: str) -> Any:
    """One person (Lever's contact): their applications through the site, and every opportunity Lever holds."""
    svc = get_services()
    records = store.load_many(svc.redis, store.of_contact(svc.redis, contact_id))
    sourced_ = people.load_many(svc.redis, people.of_contact(svc.redis, contact_id))  # talent community, events
    if not records and not sourced_:
        abort(404, "No application from this person.")
    try:
        in_lever, problem = tagging.of_contact(svc.delivery, contact_id), ""
    except tagging.LeverNotReachable as e:
        in_lever, problem = [], str(e)
    titles = {rec.posting_id: rec.posting_title for rec in records}
    return render_template(
        "admin/person.html",
        contact_id=contact_id,
        records=records,
        in_lever=in_lever,
        problem=problem,
        titles=titles,
        sourced=sourced_,
    )


@bp.get("/pipeline")
def pipeline_page() -> Any:
    """Where the site's candidates stand in Lever: a table and a funnel per posting and per source/campaign."""
    svc = get_services()
    report.ensure_stage_names(svc.delivery)
    since, until = _date(request.args.get("from")), _date(request.args.get("to"), end=True)
    # Only the filters go on to the CSV link: the whole query string in url_for would let `_method`, `endpoint` or
    # `_external` through as url_for's own arguments (a 500).
    filters = {name: request.args[name] for name in ("from", "to") if request.args.get(name)}
    return render_template("admin/pipeline.html", report=report.report(svc.redis, since, until), args=filters)


@bp.get("/pipeline.csv")
@admin_only
def pipeline_csv() -> Response:
    r = get_services().redis
    since, until = _date(request.args.get("from")), _date(request.args.get("to"), end=True)
    audit.record(r, who(), "download pipeline report")
    answer = Response(report.to_csv(report.rows(r, since, until)), mimetype="text/csv")
    answer.headers["Content-Disposition"] = "attachment; filename=pipeline.csv"
    return answer


def _labels(posting_id: str) -> dict[str, str]:
    """Question texts by field name, from the cached form (none if the posting is gone and Lever is down)."""
    try:
        _, form = submission.form_for(posting_id)
        return {f.name: f.label for f in form.fields()}
    except (PostingNotFound, CatalogUnavailable):
        return {}


@bp.get("/applications/<receipt>/files/<int:index>")
def application_file(receipt: str, index: int) -> Response:
    r = get_services().redis
    record = _record_or_404(receipt)
    try:
        f = record.files[index]
        content = uploads.read(r, receipt, f)
    except (IndexError, uploads.FileMissing):
        abort(404, "This file is no longer stored (files are removed once delivered to Lever).")
    audit.record(r, who(), "download file", receipt, f["filename"])
    return send_file(
        io.BytesIO(content), mimetype=f["content_type"], as_attachment=True, download_name=uploads.safe_name(f)
    )


@bp.post("/applications/<receipt>/retry")
@admin_only
def retry(receipt: str) -> Any:
    svc = get_services()
    record = _record_or_404(receipt)
    queued = jobs.retry_now(svc.redis, [record.receipt])
    audit.record(svc.redis, who(), "retry", receipt)
    flash("Queued for delivery." if queued else "Nothing to retry: it was already delivered or discarded.")
    return redirect(url_for("admin.application_page", receipt=receipt))


@bp.post("/applications/<receipt>/maybe-delivered")
@admin_only
def settle_maybe_delivered(receipt: str) -> Any:
    """A person looked in Lever for an application reconcile could not tell apart: it is there, or send it again."""
    svc = get_services()
    record = _record_or_404(receipt)
    delivered = request.form.get("decision") == "delivered"
    opportunity = request.form.get("opportunity", "")[:64]
    try:
        deliverer.settle_maybe_delivered(
            svc.delivery, record.receipt, who(), delivered=delivered, opportunity_id=opportunity
        )
    except deliverer.DeliveryUnderWay:
        flash("A worker is sending it to Lever right now: look again in a minute.")
        return redirect(url_for("admin.application_page", receipt=receipt))
    except deliverer.NotMaybeDelivered:
        flash("Nothing to decide: it is no longer waiting for a person.")
        return redirect(url_for("admin.application_page", receipt=receipt))
    if delivered:
        jobs.enqueue_tagging(svc.redis, record.receipt)
        audit.record(svc.redis, who(), "mark delivered", receipt, f"Lever opportunity {opportunity}")
        flash("Marked delivered.")
    else:
        jobs.retry_now(svc.redis, [record.receipt])
        audit.record(svc.redis, who(), "send again", receipt, "not in Lever")
        flash("Queued to be sent again.")
    return redirect(url_for("admin.application_page", receipt=receipt))


@bp.post("/applications/<receipt>/retry-tagging")
@admin_only
def retry_tagging(receipt: str) -> Any:
    """Tagging that gave up (Lever kept refusing) is tried again from the start, once a recruiter has looked."""
    svc = get_services()
    record = _record_or_404(receipt)
    if record.state != State.DELIVERED or record.tagging == "done":
        flash("Nothing to retry: the tags are on the opportunity, or the application is not delivered.")
    else:
        jobs.enqueue_tagging(svc.redis, record.receipt)
        audit.record(svc.redis, who(), "retry tagging", receipt)
        flash("Tagging queued.")
    return redirect(url_for("admin.application_page", receipt=receipt))


@bp.post("/applications/retry-all")
@admin_only
def retry_all() -> Any:
    svc = get_services()
    queued = jobs.retry_now(svc.redis, store.receipts(svc.redis, State.NEEDS_ATTENTION, 100_000))
    audit.record(svc.redis, who(), "retry all", "", counted(len(queued), "application"))
    flash(f"Queued {counted(len(queued), 'application')} for delivery.")
    return redirect(url_for("admin.applications_page", state="needs_attention"))


@bp.post("/applications/<receipt>/discard")
@admin_only
def discard(receipt: str) -> Any:
    svc = get_services()
    record = _record_or_404(receipt)
    reason = request.form.get("reason", "").strip()
    if not reason:
        flash("Give a reason to discard an application.")
        return redirect(url_for("admin.application_page", receipt=receipt))
    try:
        discarded = deliverer.discard(svc.delivery, record.receipt, who(), reason)
    except deliverer.DeliveryUnderWay:
        flash("A worker is sending it to Lever right now: look again in a minute.")
        return redirect(url_for("admin.application_page", receipt=receipt))
    if not discarded:
        flash("It was already delivered or discarded.")
        return redirect(url_for("admin.application_page", receipt=receipt))
    audit.record(svc.redis, who(), "discard", receipt, reason)
    flash("Discarded.")
    return redirect(url_for("admin.application_page", receipt=receipt))


# Controls


@bp.post("/delivery/pause")
@admin_only
def pause() -> Any:
    svc = get_services()
    gate.pause(svc.redis, who())
    audit.record(svc.redis, who(), "pause delivery")
    flash("Delivery paused: applications are accepted and wait until you resume.")
    return redirect(url_for("admin.dashboard_page"))


@bp.post("/delivery/resume")
@admin_only
def resume() -> Any:
    svc = get_services()
    jobs.resume(svc.redis)
    audit.record(svc.redis, who(), "resume delivery")
    flash("Delivery resumed.")
    return redirect(url_for("admin.dashboard_page"))


@bp.post("/cache/refresh")
@admin_only
def refresh_cache() -> Any:
    svc = get_services()
    try:
        snap = svc.catalog.refresh_postings()
        flash(f"Postings refreshed from Lever: {len(snap.data)} open.")
    except CatalogUnavailable as e:
        flash(f"Lever did not answer, the cached postings stay: {e}")
    audit.record(svc.redis, who(), "refresh postings cache")
    return redirect(url_for("admin.dashboard_page"))


@bp.get("/audit")
def audit_page() -> Any:
    r = get_services().redis
    entries, api_use = audit.entries(r, 500), audit.entries(r, 200, api=True)
    return render_template(
        "admin/audit.html",
        entries=entries,
        api_use=api_use,
        subjects=_subjects(r, {e["target"] for e in entries + api_use if e["target"]}),
    )


def _subjects(r: Any, targets: set[str]) -> dict[str, tuple[str, str]]:
    """What each audit entry acted on, named and linked: an application (its candidate's name and reference), an
    event, a sourced person; a target that is none of these (an account's email) stays as written."""
    found: dict[str, tuple[str, str]] = {}
    for rec in store.load_many(r, sorted(targets)):
        name = rec.application.personal.get("fullName") if rec.application else ""
        found[rec.receipt] = (
            f"Application: {name or 'personal data removed'} ({store.reference(rec.receipt)})",
            url_for("admin.application_page", receipt=rec.receipt),
        )
    if get_services().settings.sourcing:
        for event in events.all_(r):
            if event.id in targets:
                found[event.id] = (f"Event: {event.name}", url_for("admin.event_page", event_id=event.id))
        for p in people.load_many(r, sorted(targets - found.keys())):
            page = url_for("admin.event_page", event_id=p.event_id) if p.event_id else url_for("admin.talent_page")
            found[p.id] = (
                f"{'Captured' if p.event_id else 'Talent community'}: {p.name or 'personal data removed'}"
                f" ({store.reference(p.id)})",
                page,
            )
    return found


# Sourcing: recruiting events, capture at a booth (also offline: static/capture.js), the talent community.

MAX_CAPTURE_BYTES = 16 * 1024


@bp.context_processor
def sourcing_on() -> dict[str, Any]:
    return {"sourcing_on": get_services().settings.sourcing}


def lever_link(opportunity_id: str) -> str:
    """The opportunity's page in Lever (the local sandbox lists what it holds)."""
    s = get_services().settings
    if s.uses_sandbox:
        return f"{s.sandbox_url}/_sandbox/opportunities"
    host = s.lever_base_url.split("//", 1)[-1].split("/", 1)[0].replace("api.", "hire.", 1)
    return f"https://{host}/candidates/{opportunity_id}"


def _event_or_404(event_id: str) -> events.Event:
    sourcing.enabled()
    # The quick client: the capture API is a request a recruiter waits on (a silent Redis: a 503 in seconds).
    event = events.load(get_services().request_redis(), event_id) if event_id.isalnum() else None
    if event is None:
        abort(404, "No such event.")
    return event


def _posting_titles() -> dict[str, str]:
    try:
        return {p["id"]: p["text"] for p in get_services().catalog.postings().data}
    except CatalogUnavailable:
        return {}


def _posting_choices() -> list[tuple[str, str, str]]:
    """The open postings to pick for an event: id, title, and what tells postings with the same title apart (team,
    locations, commitment; the day it was posted when even those are the same); by title, then that."""
    try:
        data = get_services().catalog.postings().data
    except CatalogUnavailable:
        return []
    choices = [
        (p, " · ".join(filter(None, (p.get("team"), ", ".join(p.get("locations") or []), p.get("commitment")))))
        for p in data
    ]
    seen = Counter((p["text"], where) for p, where in choices)
    out = []
    for p, where in choices:
        if seen[(p["text"], where)] > 1 and p.get("createdAt"):
            where += f" · posted {datetime.fromtimestamp(p['createdAt'] / 1000, UTC):%Y-%m-%d %H:%M} UTC"
        out.append((p["id"], p["text"], where))
    return sorted(out, key=lambda c: (c[1].casefold(), c[2].casefold()))


@bp.get("/events")
def events_page() -> Any:
    sourcing.enabled()
    r = get_services().redis
    return render_template(
        "admin/events.html",
        events=events.all_(r),
        titles=_posting_titles(),
        choices=_posting_choices(),
        counts={e.id: people.count_of_event(r, e.id) for e in events.all_(r)},
    )


@bp.post("/events")
@admin_only
def add_event() -> Any:
    sourcing.enabled()
    r = get_services().redis
    titles = _posting_titles()
    try:
        event = events.add(
            r,
            request.form.get("name", ""),
            request.form.get("date", ""),
            [p for p in request.form.getlist("postings") if p in titles],
            who=who(),
        )
    except events.BadEvent as e:
        flash(f"The event was not created: {e}.")
        return redirect(url_for("admin.events_page"), 303)
    audit.record(r, who(), "add event", target=event.id)
    return redirect(url_for("admin.event_page", event_id=event.id), 303)


@bp.get("/events/<event_id>")
def event_page(event_id: str) -> Any:
    event = _event_or_404(event_id)
    return render_template(
        "admin/event.html",
        event=event,
        people=people.of_event(get_services().redis, event.id),
        titles=_posting_titles(),
        lever_link=lever_link,
    )


@bp.get("/events/<event_id>/capture")
def capture_page(event_id: str) -> Any:
    event = _event_or_404(event_id)
    owner = hmac.new(
        get_services().settings.secret_key.encode(), f"capture outbox {who()}".encode(), hashlib.sha256
    ).hexdigest()[:24]  # the outbox's key on the phone: who signed in, not named
    return render_template(
        "admin/capture.html",
        event=event,
        titles=_posting_titles(),
        owner=owner,
        email_pattern=contacts.EMAIL.pattern.strip("^$"),
    )  # the server's rule, checked in the page


@bp.get("/events/<event_id>/manifest.webmanifest")
def capture_manifest(event_id: str) -> Any:
    """What makes the capture page installable on a phone's home screen, named for the event (two events installed
    side by side are told apart), with PNG icons: iOS and some Android launchers show no SVG."""
    event = _event_or_404(event_id)
    start = url_for("admin.capture_page", event_id=event.id)
    icons = [
        {
            "src": url_for("static", filename=f"capture-{n}.png"),
            "sizes": f"{n}x{n}",
            "type": "image/png",
            "purpose": "any maskable",
        }
        for n in (192, 512)
    ]
    answer = jsonify(
        {
            "name": f"Capture: {event.name}",
            "short_name": event.name,
            "start_url": start,
            "scope": start,
            "display": "standalone",
            "background_color": "#ffffff",
            "theme_color": "#1d2433",
            "icons": icons,
        }
    )
    answer.mimetype = "application/manifest+json"
    return answer


@bp.get("/events/<event_id>/capture-sw.js")
def capture_worker(event_id: str) -> Response:
    """The capture page's service worker, served under the page's path so that its scope covers it."""
    _event_or_404(event_id)
    script = (Path(current_app.static_folder or "static") / "capture-sw.js").read_bytes()
    return Response(script, mimetype="text/javascript")


@bp.post("/api/events/<event_id>/people")
@admin_only
def capture_person(event_id: str) -> Any:
    """A capture from the booth page: 202 for a new person, 200 for a client_id already received."""
    event = _event_or_404(event_id)
    raw = request.stream.read(MAX_CAPTURE_BYTES + 1)
    try:
        body = json.loads(raw) if 0 < len(raw) <= MAX_CAPTURE_BYTES else None
    except (ValueError, RecursionError):
        body = None
    if not isinstance(body, dict):
        return jsonify({"error": "Bad Request", "message": "Send a JSON object under 16 KB."}), 400
    try:
        taken = sourcing.capture(body, event, who())
    except sourced.Invalid as e:
        return jsonify(
            {"error": "Unprocessable Entity", "message": "Some fields need attention.", "errors": dict(e.errors)}
        ), 422
    except submission.Rejected as e:
        return jsonify({"error": "Service Unavailable", "message": e.message}), e.status, e.headers
    return jsonify(
        {"id": taken.person.id, "client_id": taken.person.client_id, "status": sourcing.status_of(taken.person)}
    ), 202 if taken.new else 200


@bp.get("/talent")
def talent_page() -> Any:
    sourcing.enabled()
    return render_template("admin/talent.html", members=people.talent_community(get_services().redis))


# Job alerts (alerts/): where subscriptions stand, what was sent, and the switch that pauses every alert email.


@bp.get("/alerts")
def alerts_page() -> Any:
    r = get_services().redis
    latest = sorted(
        (sub for state in alert_subscriptions.State for sub in alert_subscriptions.listing(r, state, count=10)),
        key=lambda sub: sub.stopped_at or sub.confirmed_at or sub.created_at,
        reverse=True,
    )
    return render_template(
        "admin/alerts.html",
        counts=alert_subscriptions.counts(r),
        per_day=alert_digest.sent_per_day(r, 14),
        pause=alert_digest.pause_state(r),
        latest=latest,
        waiting=alert_fanout.waiting_people(r),
    )


@bp.post("/alerts/pause")
@admin_only
def alerts_pause() -> Any:
    r = get_services().redis
    on = request.form.get("on") == "1"
    alert_digest.set_pause(r, on, who())
    audit.record(r, who(), "pause job alerts" if on else "resume job alerts")
    flash(
        "Job alerts paused: nothing is sent until you resume; new postings are still matched."
        if on
        else "Job alerts resumed: what waited is sent now."
    )
    return redirect(url_for("admin.alerts_page"))
