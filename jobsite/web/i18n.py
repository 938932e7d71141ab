"""The candidate's language: which one a request gets, the links that switch it, and our words said in it.

The site's own words are translated with Flask-Babel from gettext catalogues in translations/<language>/LC_MESSAGES/
(messages.po, and the compiled messages.mo beside it, both committed: tests/test_translations.py checks they are
complete and agree). Lever's text (titles, descriptions, question labels) is the company's and stays as written.

A request's language is `?lang=` when it names one we ship, else the best match of Accept-Language, else English.
A language chosen with `?lang=` rides on every link to a candidate page (a URL default), so it needs no cookie and
an embedding page can set it in the iframe's URL; an answer that followed Accept-Language says `Vary:
Accept-Language`, so caches keep the languages apart. The recruiters' console is English.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from babel import Locale
from flask import Flask, Response, g, has_request_context, request
from flask_babel import Babel, format_decimal, get_locale, gettext
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from ..words import Message

LANGUAGES = ("en", "de", "fr")  # English is the catalogues' source language: it needs none of its own
DEFAULT = "en"
CANDIDATE_PAGES = ("candidates.", "alerts.")  # the blueprints of pages for candidates: links between them carry
# the chosen language and the embedding parameters
LOCALES = {code: Locale.parse(code) for code in LANGUAGES}  # parsed once: Flask-Babel takes a Locale as it is


def init_app(app: Flask, translations: Path) -> None:
    """Translate templates (Jinja's i18n extension, whitespace-trimmed blocks), choose each request's language."""
    Babel(app, locale_selector=select_language, default_translation_directories=str(translations))
    app.jinja_env.policies["ext.i18n.trimmed"] = True  # babel.cfg extracts with `trimmed` too: the same msgids
    app.jinja_env.globals.update(language=language, chosen_language=chosen, language_links=language_links)
    app.jinja_env.filters["say"] = say
    app.url_defaults(carry_language)
    app.after_request(vary)


def select_language() -> Locale:
    """`?lang=`, else Accept-Language, else English; the console is always English."""
    if request.blueprint == "admin":
        return LOCALES[DEFAULT]
    asked = chosen()
    if asked:
        return LOCALES[asked]
    g.language_negotiated = True
    return LOCALES[best_language(request.headers.get("Accept-Language", ""))]


@lru_cache(maxsize=256)
def best_language(accept_language: str) -> str:
    """The best of our languages for an Accept-Language header. Browsers send a handful of distinct headers, so the
    answers are kept rather than parsed again on every request (cached pages are served in about 100 µs)."""
    return parse_accept_header(accept_language, LanguageAccept).best_match(LANGUAGES) or DEFAULT


def language() -> str:
    """The request's language as a BCP 47 tag, for <html lang> and page cache keys."""
    return str(get_locale() or DEFAULT).replace("_", "-")


def chosen() -> str | None:
    """The language the visitor chose with `?lang=`, if any."""
    if not has_request_context() or b"lang=" not in request.query_string:  # most requests: no need to parse it
        return None
    asked = request.args.get("lang", "")  # "lang=" may also end another name (?xlang=)
    return asked if asked in LANGUAGES else None


def carry_language(endpoint: str, values: dict[str, Any]) -> None:
    """Links to candidate pages keep a language chosen with `?lang=`."""
    lang = chosen()
    if lang and endpoint.startswith(CANDIDATE_PAGES) and "lang" not in values:
        values["lang"] = lang


def vary(response: Response) -> Response:
    if g.get("language_negotiated"):
        earlier = response.headers.get("Vary")  # a string, not response.vary's parsed set: this runs on every page
        response.headers["Vary"] = f"{earlier}, Accept-Language" if earlier else "Accept-Language"
    return response


def language_links() -> list[dict[str, Any]]:
    """This page in each language: its own name (in that language), the same URL and parameters (embed=1, filters)
    with `lang` set, and whether it is the one shown."""
    path = quote(request.script_root + request.path)
    others = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
    current = str(get_locale())
    return [
        {
            "code": code,
            "name": native_name(code),
            "current": code == current,
            "href": f"{path}?{urlencode([*others, ('lang', code)])}",
        }
        for code in LANGUAGES
    ]


def native_name(code: str) -> str:
    """A language's name as its speakers write it at the start of a line: English, Deutsch, Français."""
    name = Locale.parse(code).get_display_name(code) or code
    return name[:1].upper() + name[1:]


def say(value: Any) -> Any:
    """Our `Message`s in the request's language (numbers in its format: 10.000 Zeichen), in a value or inside dicts
    and lists; anything else as it is."""
    if isinstance(value, Message):
        text = gettext(value.msgid)
        if not value.params:
            return text
        return text % {k: format_decimal(v) if isinstance(v, int) else v for k, v in value.params.items()}
    if isinstance(value, dict):
        return {k: say(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [say(v) for v in value]
    return value
