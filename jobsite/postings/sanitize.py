"""Lever's posting HTML made safe to show: an allow-list of tags and attributes, nothing executable."""

from __future__ import annotations

import nh3

TAGS = {"p", "div", "span", "br", "b", "strong", "i", "em", "s", "u", "a", "ul", "ol", "li", "h3", "h4", "blockquote"}
ATTRIBUTES = {"a": {"href", "title"}}


def clean_html(html: str | None, extra_tags: frozenset[str] = frozenset()) -> str:
    """Keep formatting, drop scripts, styles, event handlers and non-http(s)/mailto links. `extra_tags` widens the
    allow-list for text whose headings we placed ourselves (the company's Markdown)."""
    if not html:
        return ""
    return nh3.clean(
        html,
        tags=TAGS | extra_tags,
        attributes=ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener nofollow ugc",
        strip_comments=True,
    )
