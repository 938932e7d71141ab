"""Embedding without a browser: the widget's size budget, the parameters embedded pages keep and obey, the allowed
origins (CORS and frame-ancestors), and the console that is never framed nor read by another site."""

from __future__ import annotations

import gzip
import re
from dataclasses import replace
from pathlib import Path

import pytest

from jobsite.settings import ConfigError, Settings, load_settings
from jobsite.web.app import create_app

STATIC = Path(__file__).resolve().parent.parent / "static"
WIDGET_BUDGET_BYTES = 8 * 1024


def test_the_widget_stays_under_8_kb_gzipped() -> None:
    sizes = {}
    for name in ("widget.js", "embed.js", "framed.js"):
        source = (STATIC / name).read_bytes()
        sizes[name] = len(gzip.compress(source, compresslevel=9))
        print(f"{name}: {len(source)} bytes, {sizes[name]} bytes gzipped")
    assert sizes["widget.js"] <= WIDGET_BUDGET_BYTES, f"widget.js is {sizes['widget.js']} bytes gzipped, over 8 KB"


def test_embedded_pages_take_the_hosts_theme_when_it_is_readable(client, sandbox) -> None:
    page = client.get("/?embed=1&accent=8a1c7c&background=ffffff&text=222222").get_data(as_text=True)
    css_url = re.search(r'href="(/embed\.css\?[^"]+)"', page).group(1).replace("&amp;", "&")
    css = client.get(css_url)
    assert css.status_code == 200
    assert css.mimetype == "text/css"
    assert "--accent: #8a1c7c;" in css.get_data(as_text=True)
    assert "--bg: #ffffff;" in css.get_data(as_text=True)
    posting_link = re.search(r'href="(/jobs/[^"]+)"', page).group(1)
    assert "accent=%238a1c7c" in posting_link  # kept on the links to the next pages
    # yellow buttons with white text would be unreadable: the whole theme is ignored, the page stays readable
    unreadable = client.get("/?embed=1&accent=ffcc00").get_data(as_text=True)
    assert "/embed.css" not in unreadable
    assert client.get("/embed.css?accent=ffcc00").get_data(as_text=True) == ":root {  }\n"
    assert "/embed.css" not in client.get("/?accent=8a1c7c").get_data(as_text=True)  # only when embedded


def test_hide_and_source_are_kept_on_links_but_not_in_canonical_addresses(client, sandbox) -> None:
    page = client.get("/?embed=1&hide=heading,filters,bogus&source=careers%20page&utm_campaign=spring")
    text = page.get_data(as_text=True)
    assert 'class="hero"' not in text
    assert 'form class="filters"' not in text
    assert '<h1 class="visually-hidden">' in text
    link = re.search(r'class="posting-card">\s*<a href="([^"]+)"', text).group(1).replace("&amp;", "&")
    assert "embed=1" in link
    assert "hide=filters,heading" in link
    assert "source=careers+page" in link
    assert "utm_campaign=spring" in link
    assert "bogus" not in link
    canonical = re.search(r'rel="canonical" href="([^"]+)"', text).group(1)
    assert "?" not in canonical
    posting = client.get(link).get_data(as_text=True)
    assert re.search(r'rel="canonical" href="http://localhost/jobs/[^"?]+"', posting)
    apply_link = re.search(r'href="([^"]+/apply[^"]*)"', posting).group(1).replace("&amp;", "&")
    form = client.get(apply_link).get_data(as_text=True)
    action = re.search(r'form class="apply"[^>]*action="([^"]+)"', form.replace("\n", " ")).group(1)
    assert "source=careers+page" in action
    assert "utm_campaign=spring" in action
    assert 'data-origins="null"' in form  # framed.js: any site may embed (JOBSITE_EMBED_ORIGINS unset)
    plain = client.get("/").get_data(as_text=True)
    assert 'class="hero"' in plain
    assert "framed.js" not in plain


@pytest.fixture
def allowed_app(settings: Settings, r):
    """The app with JOBSITE_EMBED_ORIGINS set to one company site."""
    app = create_app(replace(settings, embed_origins=(COMPANY,)))
    app.config["TESTING"] = True
    return app


COMPANY, OTHER = "https://www.acme.example", "https://evil.example"


def test_any_origin_may_read_and_frame_when_no_origins_are_set(client, sandbox) -> None:
    answer = client.get("/api/v1/postings", headers={"Origin": OTHER})
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert "Origin" not in answer.headers.get("Vary", "")
    assert "ETag" in answer.headers["Access-Control-Expose-Headers"]
    assert "frame-ancestors *" in client.get("/").headers["Content-Security-Policy"]


def test_only_allowed_origins_get_cors_and_may_frame_the_pages(allowed_app, sandbox) -> None:
    client = allowed_app.test_client()
    ours = client.get("/api/v1/postings", headers={"Origin": COMPANY})
    assert ours.headers["Access-Control-Allow-Origin"] == COMPANY
    assert "Origin" in ours.headers["Vary"]
    theirs = client.get("/api/v1/postings", headers={"Origin": OTHER})
    assert "Access-Control-Allow-Origin" not in theirs.headers
    assert "Origin" in theirs.headers["Vary"]
    assert theirs.status_code == 200  # the server answers; the browser keeps it from the other page

    preflight = client.options(
        "/api/v1/postings/x/applications",
        headers={
            "Origin": COMPANY,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, idempotency-key",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == COMPANY
    assert preflight.headers["Access-Control-Max-Age"] == "86400"
    assert "Idempotency-Key" in preflight.headers["Access-Control-Allow-Headers"]
    assert "Authorization" not in preflight.headers["Access-Control-Allow-Headers"]  # keys stay on servers
    refused = client.options("/api/v1/postings", headers={"Origin": OTHER, "Access-Control-Request-Method": "GET"})
    assert "Access-Control-Allow-Origin" not in refused.headers

    csp = client.get("/").headers["Content-Security-Policy"]
    assert f"frame-ancestors 'self' {COMPANY}" in csp
    assert "*" not in csp.split("frame-ancestors")[1]
    assert f'data-origins="[&#34;{COMPANY}&#34;]"' in client.get("/?embed=1").get_data(as_text=True)


@pytest.mark.parametrize("path", ["/admin/login", "/admin/", "/admin/api/status"])
def test_the_console_is_never_framed_nor_read_by_another_site(allowed_app, client, sandbox, path: str) -> None:
    for c in (client, allowed_app.test_client()):
        answer = c.get(path, headers={"Origin": COMPANY})
        assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["Cross-Origin-Resource-Policy"] == "same-origin"
        assert "Access-Control-Allow-Origin" not in answer.headers


def test_embed_origins_are_checked_at_start_up() -> None:
    env = {"JOBSITE_EMBED_ORIGINS": "https://www.acme.example, http://localhost:8080/ https://www.acme.example"}
    assert load_settings(env).embed_origins == ("https://www.acme.example", "http://localhost:8080")
    for bad in ("www.acme.example", "https://acme.example/careers", "ftp://acme.example", ",", "https://a:99999"):
        with pytest.raises(ConfigError, match="JOBSITE_EMBED_ORIGINS"):
            load_settings({"JOBSITE_EMBED_ORIGINS": bad})
    assert load_settings({}).embed_origins is None
