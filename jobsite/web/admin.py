"""The recruiters' console: sign-in, dashboard, applications, actions, controls. Viewers read; admins act."""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
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

from .. import mail
from ..addresses import ip_digest
from ..console import accounts, audit, dashboard
from ..delivery import deliverer, gate, jobs
from ..followup import report, tagging
from ..intake.forms import build_form
from ..postings.catalog import CatalogUnavailable, PostingNotFound
from ..records import store, uploads
from ..records.application import custom_name
from ..records.store import State
from ..services import get_services
from .security import check_csrf

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
def load_user() -> Any:
    g.user = None
    email, sid = session.get("user"), session.get("sid")
    if isinstance(email, str) and isinstance(sid, str):
        g.user = accounts.session_user(get_services().redis, email, sid)
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
    start at `lever_app` (Lever's web app, Settings.lever_app_url)."""
    return {"states": list(State), "lever_app": get_services().settings.lever_app_url}


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
            user = accounts.authenticate(svc.redis, typed, request.form.get("password", ""), address)
        except accounts.Throttled as e:
            wait = f"{e.retry_after} seconds" if e.retry_after < 120 else f"{e.retry_after // 60} minutes"
            error = f"Too many failed sign-ins from here. Wait {wait} and try again."
            audit.record(svc.redis, typed, "sign-in refused: too many failures from one address")
            return render_template("admin/login.html", error=error, email=typed), 429, \
                {"Retry-After": str(e.retry_after)}
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
    return redirect(url_for("admin.login"))


@bp.post("/logout-everywhere")
def logout_everywhere() -> Any:
    """Ends every session of this account, on every device."""
    r = get_services().redis
    accounts.close_all_sessions(r, who())
    audit.record(r, who(), "sign-out everywhere")
    session.clear()
    return redirect(url_for("admin.login"))


# Dashboard


@bp.get("/")
def dashboard_page() -> Any:
    svc = get_services()
    hist = dashboard.history(svc)
    peak = max([1] + [max(h["submitted"], h["delivered"]) for h in hist])
    return render_template("admin/dashboard.html", s=dashboard.status(svc), history=hist, peak=peak,
                           cache=svc.catalog.info())


@bp.get("/api/status")
def status_json() -> Any:
    return jsonify(dashboard.status(get_services()))


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
    return render_template("admin/applications.html", records=records[:200], states=list(State), state=state,
                           posting=posting, counts=store.counts(r), args=request.args)


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
    return render_template("admin/application.html", rec=record, attempts=store.attempts(svc.redis, receipt),
                           audit=audit.entries(svc.redis, 50, target=receipt), labels=_labels(record.posting_id),
                           custom_name=custom_name, mail=mail.state(svc.redis, receipt),
                           mail_on=svc.settings.smtp is not None)


@bp.get("/people/<contact_id>")
def person(contact_id: str) -> Any:
    """One person (Lever's contact): their applications through the site, and every opportunity Lever holds."""
    svc = get_services()
    records = store.load_many(svc.redis, store.of_contact(svc.redis, contact_id))
    if not records:
        abort(404, "No application from this person.")
    try:
        in_lever, problem = tagging.of_contact(svc, contact_id), ""
    except tagging.LeverNotReachable as e:
        in_lever, problem = [], str(e)
    titles = {rec.posting_id: rec.posting_title for rec in records}
    return render_template("admin/person.html", contact_id=contact_id, records=records, in_lever=in_lever,
                           problem=problem, titles=titles)


@bp.get("/pipeline")
def pipeline_page() -> Any:
    """Where the site's candidates stand in Lever: a table and a funnel per posting and per source/campaign."""
    svc = get_services()
    report.ensure_stage_names(svc)
    since, until = _date(request.args.get("from")), _date(request.args.get("to"), end=True)
    return render_template("admin/pipeline.html", report=report.report(svc.redis, since, until), args=request.args)


@bp.get("/report.csv")
@admin_only
def pipeline_csv() -> Response:
    r = get_services().redis
    since, until = _date(request.args.get("from")), _date(request.args.get("to"), end=True)
    audit.record(r, who(), "download pipeline report")
    answer = Response(report.to_csv(report.rows(r, since, until)), mimetype="text/csv")
    answer.headers["Content-Disposition"] = "attachment; filename=report.csv"
    return answer


def _labels(posting_id: str) -> dict[str, str]:
    """Question texts by field name, from the cached form (none if the posting is gone and Lever is down)."""
    try:
        catalog = get_services().catalog
        form = build_form(catalog.questions(catalog.posting(posting_id)).data)
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
    return send_file(io.BytesIO(content), mimetype=f["content_type"], as_attachment=True,
                     download_name=f["filename"])


@bp.post("/applications/<receipt>/retry")
@admin_only
def retry(receipt: str) -> Any:
    svc = get_services()
    record = _record_or_404(receipt)
    queued = jobs.retry_now(svc.redis, [record.receipt])
    audit.record(svc.redis, who(), "retry", receipt)
    flash("Queued for delivery." if queued else "Nothing to retry: it was already delivered or discarded.")
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
        discarded = deliverer.discard(svc, record.receipt, who(), reason)
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
    return render_template("admin/audit.html", entries=audit.entries(get_services().redis, 500))
