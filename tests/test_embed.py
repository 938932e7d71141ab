"""Embedding without a browser: the widget's size budget, the parameters embedded pages keep and obey, the allowed
origins (CORS and frame-ancestors), and the console that is never framed nor read by another site."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

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
    assert css.status_code == 200 and css.mimetype == "text/css"
    assert "--accent: #8a1c7c;" in css.get_data(as_text=True) and "--bg: #ffffff;" in css.get_data(as_text=True)
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
    assert 'class="hero"' not in text and 'form class="filters"' not in text
    assert '<h1 class="visually-hidden">' in text
    link = re.search(r'class="posting-card">\s*<a href="([^"]+)"', text).group(1).replace("&amp;", "&")
    assert "embed=1" in link and "hide=filters,heading" in link and "source=careers+page" in link
    assert "utm_campaign=spring" in link and "bogus" not in link
    canonical = re.search(r'rel="canonical" href="([^"]+)"', text).group(1)
    assert "?" not in canonical
    posting = client.get(link).get_data(as_text=True)
    assert re.search(r'rel="canonical" href="http://localhost/jobs/[^"?]+"', posting)
    apply_link = re.search(r'href="([^"]+/apply[^"]*)"', posting).group(1).replace("&amp;", "&")
    form = client.get(apply_link).get_data(as_text=True)
    action = re.search(r'form class="apply"[^>]*action="([^"]+)"', form.replace("\n", " ")).group(1)
    assert "source=careers+page" in action and "utm_campaign=spring" in action
    assert 'data-origins="null"' in form  # framed.js: any site may embed (JOBSITE_EMBED_ORIGINS unset)
    plain = client.get("/").get_data(as_text=True)
    assert 'class="hero"' in plain and "framed.js" not in plain
