"""The company's brand without a fork: logo, favicon, colours, intro, about-us Markdown, footer and privacy links,
and a template folder searched first; unreadable colours stop start-up."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from jobsite.colours import contrast
from jobsite.settings import ConfigError, Settings, load_settings
from jobsite.web.app import create_app

from .helpers import LOGO, Sandbox, brand_env, simple_posting


@pytest.fixture
def branded(settings: Settings, tmp_path: Path, r):
    brand = load_settings(brand_env(tmp_path), data_dir=settings.data_dir).brand
    app = create_app(replace(settings, brand=brand))
    app.config["TESTING"] = True
    return app.test_client()


def test_contrast_follows_wcag() -> None:
    assert round(contrast("#000000", "#ffffff"), 1) == 21.0
    assert round(contrast("#2454d6", "#ffffff"), 2) == round(contrast("#ffffff", "#2454d6"), 2) > 4.5


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("JOBSITE_BRAND_PRIMARY_COLOUR", "#ffcc00", "unreadable against white text"),
        ("JOBSITE_BRAND_PRIMARY_COLOUR", "#777777", "unreadable"),  # 4.48:1, just under AA
        ("JOBSITE_BRAND_PRIMARY_COLOUR", "blue", "must be a colour like"),
        ("JOBSITE_BRAND_ACCENT_COLOUR", "#333333", "unreadable against the text"),
        ("JOBSITE_BRAND_LOGO", "/no/such/logo.svg", "must name a readable file"),
        ("JOBSITE_BRAND_FOOTER_LINKS", "Blog https://example.com", "Label=URL pairs"),
        ("JOBSITE_BRAND_FOOTER_LINKS", "Blog=javascript:alert(1)", "http(s) URL"),
        ("JOBSITE_PRIVACY_URL", "example.com/privacy", "http(s) URL"),
        ("JOBSITE_TEMPLATES_DIR", "/no/such/folder", "must name a directory"),
    ],
)
def test_a_bad_brand_setting_names_its_variable(tmp_path: Path, name: str, value: str, words: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings({name: value, "JOBSITE_DATA_DIR": str(tmp_path)})
    assert str(e.value).startswith(name)
    assert words in str(e.value)
    assert "\n" not in str(e.value)


def test_a_low_contrast_colour_stops_start_up_in_one_line(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "jobsite", "worker"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"JOBSITE_BRAND_PRIMARY_COLOUR": "#9ab", "JOBSITE_DATA_DIR": str(tmp_path), "PATH": "/usr/bin"},
    )
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "JOBSITE_BRAND_PRIMARY_COLOUR #9ab is unreadable against white text" in lines[0]


def test_the_brand_shows_on_every_candidate_page(branded, sandbox: Sandbox) -> None:
    posting = simple_posting(sandbox)
    pages = ["/", "/?q=zzzz-nothing", f"/jobs/{posting['id']}", f"/jobs/{posting['id']}/apply", "/no-such-page"]
    for path in pages:
        html = branded.get(path).get_data(as_text=True)
        assert '<img class="logo" src="/brand/logo" alt="Acme Robotics">' in html, path
        assert 'rel="icon" href="/favicon.ico"' in html, path
        assert "/brand.css?v=" in html, path
        assert '<a href="https://example.com/blog">Our blog</a>' in html, path
        assert '<a href="https://example.com/privacy">Privacy policy</a>' in html, path
    home = branded.get("/").get_data(as_text=True)
    assert "We make warehouse robots that people like working with." in home
    assert "<h2>Why join us</h2>" in home
    assert "<strong>robots</strong>" in home
    assert "<li>Four-day week</li>" in home
    assert 'href="https://example.com/mission"' in home
    assert "<script>alert" not in home  # Markdown's raw HTML is off and the sanitiser runs after it
    css = branded.get("/brand.css")
    assert css.mimetype == "text/css"
    assert "--accent: #0b6e4f" in css.get_data(as_text=True)
    assert "--brand-accent: #fde8c8" in css.get_data(as_text=True)
    with branded.get("/brand/logo") as logo:
        assert logo.status_code == 200
        assert logo.mimetype == "image/svg+xml"
        assert logo.data == LOGO
    for path in ("/brand/favicon", "/favicon.ico"):
        with branded.get(path) as favicon:
            assert favicon.status_code == 200, path
            assert favicon.mimetype == "image/png", path


def test_an_unbranded_site_serves_no_brand_images_but_its_own_favicon(client) -> None:
    html = client.get("/").get_data(as_text=True)
    assert 'class="logo"' not in html
    assert "Acme Robotics <span>Careers</span>" in html
    assert 'rel="icon" href="/favicon.ico"' in html  # browsers ask for one: no page logs a 404 for it
    with client.get("/favicon.ico") as favicon:
        assert favicon.status_code == 200
        assert favicon.mimetype == "image/svg+xml"
        assert b"<svg" in favicon.data
    assert client.get("/brand/logo").status_code == 404
    assert "--accent: #2454d6" in client.get("/brand.css").get_data(as_text=True)


def test_the_templates_folder_is_searched_first(settings: Settings, tmp_path: Path, r) -> None:
    folder = tmp_path / "templates"
    (folder / "errors").mkdir(parents=True)
    (folder / "errors" / "error.html").write_text(
        '{% extends "base.html" %}{% block main %}Ours: {{ status }}{% endblock %}'
    )
    brand = load_settings({"JOBSITE_TEMPLATES_DIR": str(folder)}, data_dir=settings.data_dir).brand
    client = create_app(replace(settings, brand=brand)).test_client()
    html = client.get("/no-such-page").get_data(as_text=True)
    assert "Ours: 404" in html
    assert "Acme Robotics <span>Careers</span>" in html
    assert "Join Acme Robotics" in client.get("/").get_data(as_text=True)  # templates it does not override
