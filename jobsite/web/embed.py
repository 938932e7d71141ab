"""Candidate pages inside a company's own site: what an embedded page keeps on its links, what the host may hide and
recolour, and where a candidate came from.

An embedded page (`?embed=1`) keeps `embed`, `hide` and the theme colours on every link to another candidate page,
and any page keeps where the candidate came from (`source`, `lever-source`, `utm_*`, and `ref`, the referring site
of the first page a candidate opened), so the application form can record it: no cookie, nothing stored. Theme
colours reach the page as a stylesheet served from this site (`/embed.css`), so the CSP keeps `style-src 'self'`;
a colour that would make text unreadable (WCAG AA, 4.5:1) is ignored rather than shown.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import Blueprint, Flask, Response, g, has_request_context, request, url_for

from ..colours import AA_CONTRAST, INK, PAGE_BACKGROUND, WHITE, contrast
from ..records.application import Attribution, clean_attribution
from .i18n import CANDIDATE_PAGES

bp = Blueprint("embed", __name__)

CARRIED_SOURCE = ("source", "lever-source", "utm_source", "utm_medium", "utm_campaign", "ref")
HIDEABLE = ("heading", "filters")
THEME = ("accent", "background", "text")  # links and buttons, the page behind the cards, the text
CARRIED = ("embed", "hide", *THEME, *CARRIED_SOURCE)
MUTED = "#5b6475"  # static/site.css --muted: help text, drawn on the page's background too
_COLOUR = re.compile(r"^#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})$")


def _colour(raw: str | None) -> str | None:
    match = _COLOUR.match(raw or "")
    if not match:
        return None
    digits = match.group(1).lower()
    return "#" + (digits if len(digits) == 6 else "".join(c * 2 for c in digits))


def theme(args: Mapping[str, str]) -> dict[str, str]:
    """The theme colours asked for, all of them if they are readable together and none otherwise: buttons carry
    white text on the accent, links and help text sit on the cards (white) and on the background."""
    asked = {k: c for k in THEME if (c := _colour(args.get(k)))}
    accent, background, text = (
        asked.get("accent", "#2454d6"),
        asked.get("background", PAGE_BACKGROUND),
        asked.get("text", INK),
    )
    pairs = [(accent, WHITE), (accent, background), (text, WHITE), (text, background), (MUTED, background)]
    return asked if all(contrast(a, b) >= AA_CONTRAST for a, b in pairs) else {}


def hidden(args: Mapping[str, str]) -> frozenset[str]:
    """What the host asked to hide (`hide=heading,filters`); unknown names are ignored."""
    return frozenset(x.strip() for x in (args.get("hide") or "").split(",")) & frozenset(HIDEABLE)


def _referrer() -> str:
    """The host of the site that sent the candidate here, when it is another site (first touch: a later page's
    Referer is this site, and `ref` is then already carried on the link)."""
    host = urlsplit(request.referrer or "").hostname or ""
    return clean_attribution(host) if host and host != (request.host.split(":")[0]) else ""


def may_be_referred(environ: dict[str, Any]) -> bool:
    """Whether a request could get a page that carries its Referer (see `carried`): a Referer naming another host,
    and neither `ref` nor `embed=1` in the query. Decided on the raw request, ahead of Flask, for the front cache:
    it errs towards yes (such a request is simply rendered)."""
    referrer = environ.get("HTTP_REFERER")
    if not referrer:
        return False
    host = environ.get("HTTP_HOST", "").rpartition(":")[0] or environ.get("HTTP_HOST", "")
    if (urlsplit(referrer).hostname or "") == host.lower():
        return False
    args = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    return "ref" not in args and args.get("embed", [""])[0] != "1"


def carried() -> dict[str, str]:
    """What this request keeps on its links to other candidate pages (computed once per request)."""
    if "embed_carried" in g:
        found: dict[str, str] = g.embed_carried
        return found
    args = request.args
    found = {k: v for k in CARRIED_SOURCE if (v := clean_attribution(args.get(k)))}
    g.embed_referred = False
    if "ref" not in found and args.get("embed") != "1" and (ref := _referrer()):
        found["ref"] = ref  # an embedded page's Referer is the host page: its script passes the host's referrer on
        g.embed_referred = True
    if args.get("embed") == "1":
        found["embed"] = "1"
        if hide := hidden(args):
            found["hide"] = ",".join(sorted(hide))
        found.update(theme(args))
    g.embed_carried = found
    return found


def referred_from() -> str:
    """The referring site this page's links carry when it came from the Referer header rather than the query: the
    page then differs per visitor, so page caches key on it and shared caches must not keep it."""
    ref = carried().get("ref", "")  # carried() decides whether the Referer gave it
    return str(ref) if g.embed_referred else ""


def attribution(values: Mapping[str, Any] | None = None) -> Attribution:
    """Where an application came from: the `source`, `lever-source`, `utm_*` and `ref` of `values` (e.g. a JSON
    body) where it names any, else of the request's query string (which the form's action carries)."""
    if values is not None:
        found = Attribution.of(values)
        if found != Attribution():
            return found
    args = request.args
    referrer = _referrer() if "ref" not in args and args.get("embed") != "1" else ""
    return Attribution.of({**args.to_dict(), **({"ref": referrer} if referrer else {})})


def keep_on_links(endpoint: str, values: dict[str, Any]) -> None:
    """A link from one candidate page to another keeps the embedding parameters (a value given explicitly, even
    None, wins: canonical links pass None)."""
    if endpoint.startswith(CANDIDATE_PAGES) and has_request_context() and f"{request.blueprint}." in CANDIDATE_PAGES:
        for k, v in carried().items():
            values.setdefault(k, v)


@bp.get("/embed.css")
def stylesheet() -> Response:
    """The host's theme colours as custom properties of static/site.css."""
    colours = theme(request.args)
    names = {"accent": "--accent", "background": "--bg", "text": "--ink"}
    body = ":root { " + " ".join(f"{names[k]}: {v};" for k, v in colours.items()) + " }\n"
    answer = Response(body, mimetype="text/css")
    answer.headers["Cache-Control"] = "public, max-age=86400"
    return answer


def init_app(app: Flask, origins: tuple[str, ...] | None) -> None:
    """Register /embed.css, keep the parameters on links, and give templates what they show or hide."""
    app.register_blueprint(bp)
    app.url_defaults(keep_on_links)
    origins_json = json.dumps(list(origins)) if origins is not None else "null"

    @app.context_processor
    def embedding() -> dict[str, Any]:
        if not has_request_context() or request.blueprint != "candidates":
            return {"hide": frozenset(), "carry": {}}
        carry = carried()
        colours: dict[str, Any] = {k: carry[k] for k in THEME if k in carry}
        return {
            "hide": hidden(request.args) if "embed" in carry else frozenset(),
            "carry": carry,
            "embed_origins": origins_json,
            "theme_css": url_for("embed.stylesheet", **colours) if colours else None,
        }
