"""The company's brand on the candidate pages: its colours as a stylesheet, its logo and favicon, its words.

Colours reach the CSS as custom properties in /brand.css, a stylesheet served from our own origin, so the CSP keeps
`style-src 'self'` (no inline styles). The "about us" block is Markdown written by the company: rendered with
markdown-it (CommonMark, raw HTML off) and then passed through the same allow-list as Lever's HTML.
"""

from __future__ import annotations

import hashlib
import mimetypes

from flask import Blueprint, Flask, Response, abort, current_app, send_file
from jinja2 import ChoiceLoader, FileSystemLoader
from markdown_it import MarkdownIt
from markupsafe import Markup

from ..postings.sanitize import clean_html
from ..settings import Brand

bp = Blueprint("brand", __name__)


def init_app(app: Flask, brand: Brand) -> None:
    """Register the routes, put the brand in every template, and search the company's templates first."""
    app.register_blueprint(bp)
    about = render_markdown(brand.about_markdown)
    app.extensions["jobsite.brand"] = brand
    css_version = hashlib.sha256(stylesheet_for(brand).encode()).hexdigest()[:12]
    # Cached pages and their ETags carry the brand's version: a restart with a new logo or intro shows it at once.
    app.extensions["jobsite.brand_version"] = hashlib.sha256(f"{brand!r}{about}".encode()).hexdigest()[:12]
    app.jinja_env.globals.update(
        brand=brand,
        brand_about=Markup(about),  # noqa: S704 (rendered with raw HTML off, then cleaned)
        brand_css_version=css_version,
    )
    if brand.templates_dir:
        built_in = app.jinja_loader
        assert built_in is not None  # noqa: S101 (Flask always has one: the package's template folder)
        app.jinja_loader = ChoiceLoader([FileSystemLoader(str(brand.templates_dir)), built_in])


def render_markdown(text: str) -> str:
    """Markdown to safe HTML whose headings start at h2 and never skip a level, since it sits under the page's h1."""
    md = MarkdownIt("commonmark", {"html": False})
    tokens = md.parse(text)
    levels = sorted({int(t.tag[1]) for t in tokens if t.type == "heading_open"})
    placed = {level: f"h{min(2 + i, 4)}" for i, level in enumerate(levels)}
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = placed[int(token.tag[1])]
    return clean_html(md.renderer.render(tokens, md.options, {}), extra_tags=frozenset({"h2"}))


def stylesheet_for(brand: Brand) -> str:
    return f":root {{ --accent: {brand.primary_colour}; --accent-ink: #fff; --brand-accent: {brand.accent_colour}; }}\n"


def current() -> Brand:
    brand: Brand = current_app.extensions["jobsite.brand"]
    return brand


def version() -> str:
    """Changes whenever anything the brand puts on a page changes."""
    found: str = current_app.extensions["jobsite.brand_version"]
    return found


@bp.get("/brand.css")
def stylesheet() -> Response:
    answer = Response(stylesheet_for(current()), mimetype="text/css")
    answer.headers["Cache-Control"] = "public, max-age=300"
    return answer


@bp.get("/favicon.ico")
def favicon() -> Response:
    """The company's favicon, or the site's own: browsers ask for /favicon.ico whatever a page links, and a 404 there
    is noise in every log and console."""
    path = current().favicon
    if path is None:
        return current_app.send_static_file("favicon.svg")
    return image("favicon")


@bp.get("/brand/<any(logo, favicon):kind>")
def image(kind: str) -> Response:
    path = current().logo if kind == "logo" else current().favicon
    if path is None:
        abort(404)
    mimetype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return send_file(path, mimetype=mimetype, max_age=300)
