"""Embedding without a browser: the widget's size budget, the parameters embedded pages keep and obey, the allowed
origins (CORS and frame-ancestors), and the console that is never framed nor read by another site."""

from __future__ import annotations

import gzip
from pathlib import Path

STATIC = Path(__file__).resolve().parent.parent / "static"
WIDGET_BUDGET_BYTES = 8 * 1024


def test_the_widget_stays_under_8_kb_gzipped() -> None:
    source = (STATIC / "widget.js").read_bytes()
    size = len(gzip.compress(source, compresslevel=9))
    print(f"widget.js: {len(source)} bytes, {size} bytes gzipped (budget {WIDGET_BUDGET_BYTES})")
    assert size <= WIDGET_BUDGET_BYTES, f"widget.js is {size} bytes gzipped, over its 8 KB budget"
