"""Shares and byte counts as the command line and the report print them."""

from __future__ import annotations

import pytest

from layerlab._format import human_bytes, plotly_text, share, visible_text


@pytest.mark.parametrize(
    ("part", "whole", "digits", "text"),
    [
        (0, 0, 1, "0%"),
        (0, 500, 1, "0%"),
        (1, 3, 1, "33.3%"),
        (1, 3, 0, "33%"),
        (41, 100, 0, "41%"),
        # 1 of 10,000 is 0.01%: not zero, so it must not read as 0.0%.
        (1, 10_000, 1, "under 0.1%"),
        (4, 1_000, 0, "under 1%"),
        (9_999, 10_000, 1, "over 99.9%"),
        (10_000, 10_000, 1, "100.0%"),
        (5, 1_000, 1, "0.5%"),
    ],
)
def test_share(part: int, whole: int, digits: int, text: str) -> None:
    assert share(part, whole, digits=digits) == text


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (1_048_576, "1.0 MB")],
)
def test_human_bytes(size: int, text: str) -> None:
    assert human_bytes(size) == text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain/name.txt", "plain/name.txt"),
        ("naïve-日本語.txt", "naïve-日本語.txt"),
        ("tab\there", "tab\\there"),
        ("line\nbreak", "line\\nbreak"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("del\x7f", "del\\x7f"),
        ("c1\x85", "c1\\x85"),
        # U+202E turns the rest around: "rtl\u202etxt.exe" reads "rtlexe.txt".
        ("rtl\u202etxt.exe", "rtl\\u202etxt.exe"),
        ("isolate\u2066x\u2069", "isolate\\u2066x\\u2069"),
        # Invisible characters would make two different names look alike.
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("soft\xadhyphen", "soft\\xadhyphen"),
        ("\ufeffbom", "\\ufeffbom"),
        ("line\u2028separator", "line\\u2028separator"),
    ],
)
def test_visible_text(text: str, shown: str) -> None:
    assert visible_text(text) == shown


def test_plotly_text_keeps_quotes() -> None:
    # plotly shows &quot; and &#x27; literally, but reads tags.
    assert plotly_text("\"a\" 'b' <b>&") == "\"a\" 'b' &lt;b&gt;&amp;"
    assert plotly_text("x\u202ey") == "x\\u202ey"
