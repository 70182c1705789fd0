"""Shares and byte counts as the command line and the report print them."""

from __future__ import annotations

import pytest

from layerlab._format import human_bytes, share


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
