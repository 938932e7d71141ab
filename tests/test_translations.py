"""The site in the candidate's language: complete catalogues that agree with their compiled files, the language
chosen by ?lang= then Accept-Language, carried on links, formats from Babel, and validation messages translated in
the page and in the API."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel import dates
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from jobsite.web.i18n import LANGUAGES

from .helpers import Sandbox, file_posting, lever_body, simple_posting

ROOT = Path(__file__).resolve().parent.parent
CATALOGUES = {lang: ROOT / "translations" / lang / "LC_MESSAGES" / "messages.po" for lang in LANGUAGES if lang != "en"}


def marked_strings() -> set[str]:
    """Every msgid marked in the code and the templates, extracted as `scripts/translations` does (babel.cfg)."""
    with open(ROOT / "babel.cfg") as f:
        method_map, options_map = parse_mapping_cfg(f)
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(str(ROOT), method_map, options_map):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def test_the_extraction_sees_python_and_templates() -> None:
    found = marked_strings()
    assert "Enter your email address." in found  # jobsite/forms.py, marked with N_
    assert "Skip to content" in found  # templates/base.html, _()
    assert any(m.startswith("Your reference is <strong") for m in found)  # a {% trans %} block, trimmed


@pytest.mark.parametrize("lang", sorted(CATALOGUES))
def test_every_marked_string_is_translated(lang: str) -> None:
    """A string marked in a template or in Python but missing from a catalogue (or left empty, or fuzzy) fails here:
    run `scripts/translations update` and translate what it adds."""
    with open(CATALOGUES[lang], "rb") as f:
        catalog = read_po(f)
    entries = {(m.id[0] if isinstance(m.id, tuple) else m.id): m for m in catalog if m.id}
    missing = marked_strings() - entries.keys()
    assert not missing, f"not in {lang}'s catalogue: {sorted(missing)}"
    stale = entries.keys() - marked_strings()
    assert not stale, f"in {lang}'s catalogue but no longer marked anywhere: {sorted(stale)}"
    for msgid, message in entries.items():
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(forms), f"{lang}: no translation for {msgid!r}"
        assert not message.fuzzy, f"{lang}: {msgid!r} is marked fuzzy (guessed by pybabel update): check it"
    problems = [(m.id, errors) for m, errors in catalog.check()]
    assert not problems, f"{lang}: placeholders differ from the English: {problems}"


@pytest.mark.parametrize("lang", sorted(CATALOGUES))
def test_the_compiled_catalogue_matches_its_source(lang: str) -> None:
    """The committed .mo is what the site reads: it must say what the .po says (`scripts/translations compile`)."""
    with open(CATALOGUES[lang], "rb") as f:
        compiled = io.BytesIO()
        write_mo(compiled, read_po(f))
    compiled.seek(0)
    with open(CATALOGUES[lang].with_suffix(".mo"), "rb") as f:
        committed = Translations(f)
    assert committed._catalog == Translations(compiled)._catalog  # gettext's message table


def test_each_language_has_a_catalogue() -> None:
    shipped = {p.name for p in (ROOT / "translations").iterdir() if p.is_dir()}
    assert shipped == set(LANGUAGES) - {"en"}


def lang_of(html: str) -> str:
    return re.search(r'<html lang="([^"]+)"', html).group(1)


def test_the_language_is_lang_then_accept_language_then_english(client, sandbox: Sandbox) -> None:
    german = client.get("/", headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.8"})
    assert lang_of(german.text) == "de"
    assert "Offene Stellen" in german.text
    assert "Filter zurücksetzen" not in german.text
    assert "Accept-Language" in german.headers["Vary"]
    french = client.get("/?lang=fr", headers={"Accept-Language": "de"})
    assert lang_of(french.text) == "fr"
    assert "Intitulé ou mot-clé" in french.text
    assert "Accept-Language" not in french.headers.get("Vary", "")  # ?lang= decides: caches need not split
    for header in ("es-ES,es;q=0.9", ""):
        assert lang_of(client.get("/", headers={"Accept-Language": header}).text) == "en"
    assert lang_of(client.get("/?lang=xx", headers={"Accept-Language": "fr"}).text) == "fr"  # unknown ?lang= ignored
    assert lang_of(client.get("/?xlang=de", headers={"Accept-Language": "fr"}).text) == "fr"
    # The page cache keeps the languages apart: the same URL just rendered in German is English for this visitor.
    assert lang_of(client.get("/", headers={"Accept-Language": "en"}).text) == "en"


def test_a_chosen_language_rides_on_every_link_and_the_switcher_keeps_parameters(client, sandbox: Sandbox) -> None:
    posting = simple_posting(sandbox)
    team = posting["categories"]["team"]
    html = client.get(f"/?embed=1&team={team.replace(' ', '+')}&lang=de").text
    assert f'href="/jobs/{posting["id"]}?embed=1&amp;lang=de"' in html
    assert '<input type="hidden" name="lang" value="de">' in html  # the filter form keeps it too
    switcher = re.search(r'<nav class="languages" aria-label="Sprache">(.*?)</nav>', html, re.S).group(1)
    links = dict(re.findall(r'<a href="([^"]+)" lang="(\w+)"', switcher))
    assert set(links.values()) == {"en", "de", "fr"}
    french = next(href for href, lang in links.items() if lang == "fr")
    assert "embed=1" in french
    assert f"team={team.replace(' ', '+')}" in french
    assert french.endswith("lang=fr")
    assert re.search(r'lang="de" hreflang="de" aria-current="true">Deutsch<', switcher)
    assert 'lang="fr" hreflang="fr">Français<' in switcher
    page = client.get(f"/jobs/{posting['id']}?lang=fr").text
    assert f'href="/jobs/{posting["id"]}/apply?lang=fr"' in page
    receipt = client.post(
        f"/api/v1/postings/{posting['id']}/applications", json=lever_body(sandbox, posting["id"])
    ).get_json()["receipt"]
    thanks = client.get(f"/applications/{receipt}?lang=fr").text
    assert "Merci pour votre candidature" in thanks
    assert "l’équipe de recrutement" in thanks
    assert 'href="/?lang=fr"' in thanks


def test_dates_and_salaries_in_the_candidates_format(client, sandbox: Sandbox) -> None:
    salaried = next(
        p for p in sandbox.public_postings() if p["salaryRange"] and p["salaryRange"]["interval"] == "per-year-salary"
    )
    low, high = salaried["salaryRange"]["min"], salaried["salaryRange"]["max"]
    posted = datetime.fromtimestamp(salaried["createdAt"] / 1000, UTC)
    expected = {
        "en": f"${low:,}–${high:,} per year",
        "de": f"{low:,} $ – {high:,} $ pro Jahr".replace(",", "."),
        "fr": f"de {low:,} $US à {high:,} $US par an".replace(",", " "),
    }
    for lang, salary in expected.items():
        html = client.get(f"/jobs/{salaried['id']}?lang={lang}").text
        said = re.search(r'<dd class="salary">([^<]*)</dd>', html).group(1)
        assert re.sub(r"[\xa0\u202f]", " ", said) == salary  # the locale's separators, no-break spaces
        day = dates.format_date(posted, "long", locale=lang)  # November 24, 2026; 24. November 2026; 24 novembre 2026
        assert f">{day}</time>" in html, (lang, day)


def test_validation_messages_in_the_page_and_the_api(client, sandbox: Sandbox) -> None:
    posting = file_posting(sandbox)
    url = f"/jobs/{posting['id']}/apply"
    page = client.get(url + "?lang=de").text
    rules = {name: raw for name, raw in re.findall(r'data-field="([^"]+)" data-rules=\'([^\']+)\'', page)}
    assert "Geben Sie Ihre E-Mail-Adresse ein." in rules["email"]  # the browser's check says it in German too
    assert 'data-check-other="Bitte prüfen Sie {n} Antworten"' in page
    assert f'action="{url}?lang=de"' in page
    token = re.search(r'name="form_token" value="([^"]+)"', page).group(1)
    answer = client.post(url + "?lang=de", data={"form_token": token})
    assert answer.status_code == 422
    assert "Geben Sie Ihre E-Mail-Adresse ein." in answer.text
    assert "Fügen Sie Ihren Lebenslauf bei." in answer.text
    assert "Bitte prüfen Sie" in answer.text
    assert "Enter your email address." not in answer.text
    api = f"/api/v1/postings/{posting['id']}/applications"
    body = lever_body(sandbox, posting["id"])
    body["personalInformation"] = [{"name": "fullName", "value": "Ada"}, {"name": "email", "value": "not-an-email"}]
    french = client.post(api, json=body, headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert french.status_code == 422
    data = french.get_json()
    assert data["message"] == "Certaines réponses sont à revoir."
    assert data["errors"]["email"] == "Saisissez une adresse e-mail du type nom@example.com."
    assert data["errors"]["resume"] == "Joignez votre CV."
    english = client.post(api, json=body).get_json()
    assert english["errors"]["email"] == "Enter an email address like name@example.com."


def test_error_pages_speak_the_language_too(client) -> None:
    missing = client.get("/no-such-page?lang=de")
    assert missing.status_code == 404
    assert "Diese Seite gibt es nicht" in missing.text
    assert "Prüfen Sie die Adresse" in missing.text
    assert "requested URL" not in missing.text
    assert "requested URL" in client.get("/api/v1/no-such-thing").get_json()["message"]  # the API's is for developers


def test_the_console_stays_english(client) -> None:
    login = client.get("/admin/login", headers={"Accept-Language": "de"})
    assert lang_of(login.text) == "en"
    assert 'class="languages"' not in login.text
