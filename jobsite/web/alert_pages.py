"""Job alerts for candidates: asking for them (from the job list's filters, the talent community, the application
form, the API), confirming by the email's link, managing and stopping them without an account.

Pages behind a signed link (confirm, manage, stop) change nothing on GET, which mail scanners open; a button's POST
does. The one-click stop (`/alerts/stop/...`) takes a POST without cookies or a CSRF token, as RFC 8058 mail
programs send it (`List-Unsubscribe=One-Click`): its signature is the authority. Asking costs an email to the
address, so it is capped: per visitor address (or API client) per hour, for the whole site per hour
(JOBSITE_SIGNUPS_PER_HOUR), and per mailbox by the store (a few pending confirmations at most).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from flask_babel import gettext
from werkzeug.wrappers import Response as BaseResponse

from ..alerts import subscriptions
from ..alerts.subscriptions import Frequency, State, Subscription
from ..notify import links
from ..postings import board
from ..postings.catalog import CatalogUnavailable
from ..services import get_services
from ..words import N_
from . import candidates
from .alerting import ask, enabled, offered
from .i18n import say
from .submission import Rejected

bp = Blueprint("alerts", __name__)

FREQUENCIES = {
    Frequency.INSTANT: N_("As jobs open"),
    Frequency.DAILY: N_("Once a day"),
    Frequency.WEEKLY: N_("Once a week"),
}
FILTER_LABELS = {
    "team": N_("Team"),
    "department": N_("Department"),
    "location": N_("Location"),
    "commitment": N_("Type"),
    "workplace": N_("Workplace"),
    "q": N_("Search words"),
}
STATE_WORDS = {
    State.PENDING: N_("Waiting for your confirmation"),
    State.CONFIRMED: N_("On"),
    State.STOPPED: N_("Stopped"),
    State.UNDELIVERABLE: N_("Stopped: your mail server refused our emails"),
}
GONE = N_(
    "This link is not valid any more: the alert was removed, or never confirmed in time. You can ask for "
    "alerts again from the job list."
)


@bp.app_context_processor
def alerts_context() -> dict[str, Any]:
    """Whether candidate pages offer job alerts ("Email me jobs like these")."""
    return {"alerts_offered": offered()}


def _choices(current: Mapping[str, str]) -> dict[str, list[str]]:
    """The values each filter's select offers: the open postings', and the subscription's own (a team that has no
    opening today is still a fine thing to wait for). With no postings to read (Lever unreachable, nothing cached),
    the subscription's own: managing or stopping alerts never waits for Lever."""
    try:
        facets = board.facets(get_services().catalog.postings().data)
    except CatalogUnavailable:
        facets = {name: [] for name in board.FILTERS}
    return {
        name: sorted(set(values) | ({current[name]} if current.get(name) else set())) for name, values in facets.items()
    }


def _page(template: str, *, status: int = 200, signed: bool = False, **values: Any) -> Response:
    html = render_template(
        template,
        embedded=candidates.embedded(),
        frequencies=say(FREQUENCIES),
        filter_labels=say(FILTER_LABELS),
        states=say(STATE_WORDS),
        workplaces=say(board.WORKPLACE_LABELS),
        **values,
    )
    response = candidates.signed_page(html) if signed else Response(html, mimetype="text/html")
    response.status_code = status
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _render_new(
    *,
    filters: Mapping[str, str],
    answers: Mapping[str, str] | None = None,
    errors: dict[str, str] | None = None,
    message: str | None = None,
    token: str | None = None,
    status: int = 200,
) -> Response:
    return _page(
        "candidates/alert_new.html",
        status=status,
        filters=filters,
        choices=_choices(filters),
        answers=answers or {},
        errors=errors or {},
        message=message,
        token=token or candidates.new_form_token("alerts"),
    )


@bp.get("/alerts/new")
def new() -> Response:
    """Ask for alerts for the job list's current filters (its "Email me jobs like these")."""
    enabled()
    return _render_new(filters=subscriptions.clean_filters(request.args))


@bp.post("/alerts/new")
def create() -> BaseResponse:
    enabled()
    f = request.form
    filters = subscriptions.clean_filters(f)
    answers = {"email": f.get("email", ""), "frequency": f.get("frequency", "")}
    token = f.get("form_token", "")
    if candidates.read_form_token(token, "alerts") is None:
        return _render_new(
            filters=filters,
            answers=answers,
            status=400,
            message=gettext(
                "This form had expired, so nothing was saved. Your choices are still here: please submit again."
            ),
        )
    if f.get("website"):
        return _render_new(
            filters=filters,
            answers=answers,
            status=400,
            message=gettext(
                "This submission looked automated, so it was not sent. If you are a person, please reload the page and "
                "try again."
            ),
        )
    try:
        ask(answers["email"], filters, answers["frequency"])
    except subscriptions.Invalid as e:
        return _render_new(filters=filters, answers=answers, errors=say(e.errors), token=token, status=422)
    except Rejected as e:
        response = _render_new(filters=filters, answers=answers, token=token, status=e.status, message=e.message)
        response.headers.update(e.headers)
        return response
    return redirect(url_for("alerts.asked", embed=1 if candidates.embedded() else None), 303)


@bp.get("/alerts/asked")
def asked() -> Response:
    """Check your inbox: the same words whatever the address holds (nothing tells a stranger)."""
    enabled()
    return _page("candidates/alert_asked.html", days=subscriptions.EXPIRE_DAYS)


def _signed_or_404(sub_id: str, signed: str, purpose: str) -> Subscription:
    svc = get_services()
    sub = subscriptions.get(svc.redis, sub_id) if subscriptions.signed(svc.settings, sub_id, signed, purpose) else None
    if sub is None:
        abort(404, say(GONE))
    return sub


def _manage_path(sub: Subscription) -> str:
    return url_for("alerts.manage", sub_id=sub.id, signed=links.token(get_services().settings, sub.id, "alert-manage"))


@bp.route("/alerts/confirm/<sub_id>/<signed>", methods=["GET", "POST"])
def confirm(sub_id: str, signed: str) -> Response:
    """The confirmation email's link: a page with one button; its POST starts the alerts."""
    sub = _signed_or_404(sub_id, signed, "alert-confirm")
    if request.method == "POST":
        sub = subscriptions.confirm(get_services().redis, sub_id) or sub
    return _page("candidates/alert_confirm.html", signed=True, sub=sub, manage=_manage_path(sub))


@bp.route("/alerts/manage/<sub_id>/<signed>", methods=["GET", "POST"])
def manage(sub_id: str, signed: str) -> Response:
    """Every alert email's manage link: the filters, the rhythm, stop. Each change is a POST of the page's form."""
    sub = _signed_or_404(sub_id, signed, "alert-manage")
    r, saved, errors = get_services().redis, "", {}
    if request.method == "POST":
        if request.form.get("action") == "stop":
            sub = subscriptions.stop(r, sub_id) or sub
            saved = "stopped"
        elif sub.state not in subscriptions.ENDED:
            try:
                sub = (
                    subscriptions.change(
                        r,
                        sub_id,
                        filters=subscriptions.clean_filters(request.form),
                        frequency=request.form.get("frequency", ""),
                    )
                    or sub
                )
                saved = "saved"
            except subscriptions.Invalid:
                errors = {"frequency": gettext("Please choose how often.")}
    return _page(
        "candidates/alert_manage.html",
        signed=True,
        sub=sub,
        saved=saved,
        errors=errors,
        choices=_choices(sub.filters),
        filters=sub.filters,
        again=_again(sub),
    )


@bp.route("/alerts/stop/<sub_id>/<signed>", methods=["GET", "POST"])
def stop(sub_id: str, signed: str) -> Response:
    """List-Unsubscribe's one-click address (RFC 8058): a POST stops the alert, from a mail program without cookies
    or a token; a GET (a person following the link) shows a button that does the same."""
    sub = _signed_or_404(sub_id, signed, "alert-stop")
    if request.method == "POST":
        sub = subscriptions.stop(get_services().redis, sub_id) or sub
    return _page("candidates/alert_stop.html", signed=True, sub=sub, manage=_manage_path(sub), again=_again(sub))


def _again(sub: Subscription) -> str:
    """The page to ask again for an ended alert's jobs."""
    filters: dict[str, Any] = dict(sub.filters)
    return url_for("alerts.new", **filters)


def summary(sub: Subscription) -> list[tuple[str, str]]:
    """The subscription's filters as a person reads them: (label, value), in the job list's order."""
    labels, workplaces = say(FILTER_LABELS), say(board.WORKPLACE_LABELS)
    return [
        (
            labels[name],
            workplaces.get(sub.filters[name], sub.filters[name]) if name == "workplace" else sub.filters[name],
        )
        for name in subscriptions.FILTERS
        if sub.filters.get(name)
    ]


bp.add_app_template_global(summary, "alert_summary")
