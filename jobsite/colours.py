"""Colours the company may choose, held to WCAG AA against what the site draws them on."""

from __future__ import annotations

# What the brand colours are drawn against (static/site.css): white text on primary buttons, primary links on the
# white cards and the page's background, and the site's ink on the accent band.
WHITE, PAGE_BACKGROUND, INK = "#ffffff", "#f7f8fb", "#1d2433"
AA_CONTRAST = 4.5


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours, from 1 (same) to 21 (black on white)."""

    def luminance(colour: str) -> float:
        channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)
