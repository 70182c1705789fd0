"""The HTML report in Chromium: figures drawn, tables sortable and searchable,
hostile names shown as text.

Screenshots go to test-output/screenshots/ for a person to look at.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from report_images import (
    HOSTILE_NAMES,
    NAME_WITH_SLASHES,
    write_hostile_image,
    write_large_image,
)

from layerlab._report import report
from layerlab._samples import sample_path

logger = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def sample_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sample") / "sample.html"
    return report(f"oci-archive:{sample_path('rm-later')}", path)


@pytest.fixture(scope="module")
def large_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("large")
    archive = write_large_image(directory / "large.tar")
    return report(f"oci-archive:{archive}", directory / "large.html")


@pytest.fixture(scope="module")
def plain_sample_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plain") / "plain.html"
    return report(f"oci-archive:{sample_path('rm-later')}", path, compress=False)


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("hostile")
    archive = write_hostile_image(directory / "hostile.tar")
    return report(f"oci-archive:{archive}", directory / "hostile.html")


def figure_count(page: Any) -> tuple[int, int]:
    """Return the number of figure containers and of those plotly drew."""
    counts = page.evaluate(
        "() => { const figures = [...document.querySelectorAll('.figure')];"
        " return [figures.length,"
        " figures.filter(f => f.querySelector('.main-svg')).length]; }"
    )
    return counts[0], counts[1]


def column_values(page: Any, table_id: str, column: int) -> list[str]:
    return page.evaluate(
        "([id, column]) => [...document.getElementById(id).tBodies[0].rows]"
        ".filter(row => !row.hidden)"
        ".map(row => row.cells[column].getAttribute('data-value')"
        " ?? row.cells[column].textContent.trim())",
        [table_id, column],
    )


def sort_by(page: Any, table_id: str, column: int) -> None:
    page.locator(f"#{table_id} thead th").nth(column).locator("button").click()


def visible_rows(page: Any, table_id: str) -> int:
    return page.evaluate(
        "id => [...document.getElementById(id).tBodies[0].rows]"
        ".filter(row => !row.hidden).length",
        table_id,
    )


def test_sample_report_draws(browser: Any, sample_report: Path) -> None:
    browser.open(sample_report)
    assert figure_count(browser.page) == (4, 4)
    assert browser.console_errors == []
    assert browser.dialogs == []
    for table in ("image-1-layer-table", "image-1-waste-table", "image-1-files-2"):
        assert browser.page.locator(f"#{table}").count() == 1
    browser.screenshot("sample-report")


def test_sample_report_sorts(browser: Any, sample_report: Path) -> None:
    browser.open(sample_report)
    page = browser.page
    table = "image-1-waste-table"
    sizes = [int(value) for value in column_values(page, table, 1)]

    sort_by(page, table, 1)
    assert [int(v) for v in column_values(page, table, 1)] == sorted(
        sizes, reverse=True
    )
    header = page.locator(f"#{table} thead th").nth(1)
    assert header.get_attribute("aria-sort") == "descending"

    sort_by(page, table, 1)
    assert [int(v) for v in column_values(page, table, 1)] == sorted(sizes)
    assert header.get_attribute("aria-sort") == "ascending"

    sort_by(page, table, 0)
    paths = column_values(page, table, 0)
    assert paths == sorted(paths, key=str.lower)


def test_sample_report_filters(browser: Any, sample_report: Path) -> None:
    browser.open(sample_report)
    page = browser.page
    table = "image-1-waste-table"
    total = visible_rows(page, table)
    assert total == 41

    page.locator(f"input[data-filter='{table}']").fill("part3")
    # part3.txt and part30.txt to part39.txt
    assert visible_rows(page, table) == 11
    count = page.locator(f"[data-count-for='{table}']").text_content()
    assert count == "11 of 41 rows"

    page.locator(f"input[data-filter='{table}']").fill("")
    assert visible_rows(page, table) == total


def test_layer_files_open_and_sort(browser: Any, sample_report: Path) -> None:
    browser.open(sample_report)
    page = browser.page
    page.locator("details[data-layer='0'] summary").click()
    table = "image-1-files-0"
    assert page.locator(f"#{table}").is_visible()
    sort_by(page, table, 1)
    sizes = [int(value) for value in column_values(page, table, 1)]
    assert sizes == sorted(sizes, reverse=True)
    # /bin/busybox, about 2 MB, is the largest file of the base layer.
    assert sizes[0] > 1_000_000
    browser.screenshot("sample-report-layer-0")


def test_large_report_renders(browser: Any, large_report: Path) -> None:
    seconds = browser.open(large_report, timeout_ms=120_000)
    size = large_report.stat().st_size
    logger.info("large report: %d bytes, drawn in %.2f s", size, seconds)
    assert figure_count(browser.page) == (4, 4)
    assert browser.console_errors == []
    nodes = browser.page.evaluate(
        "() => document.getElementById('image-1-figure-treemap').data[0].ids.length"
    )
    assert nodes <= 2000
    rows = visible_rows(browser.page, "image-1-files-0")
    assert rows == 1000
    assert browser.page.get_by_text("Showing the 1,000 largest of").count() >= 3
    assert size < 5_000_000
    browser.screenshot("large-report")


def test_large_report_search(browser: Any, large_report: Path) -> None:
    browser.open(large_report, timeout_ms=120_000)
    page = browser.page
    table = "image-1-files-1"
    page.locator("details[data-layer='1'] summary").click()
    page.locator(f"input[data-filter='{table}']").fill("file000050.txt")
    assert visible_rows(page, table) == 1


def test_hostile_report_is_inert(browser: Any, hostile_report: Path) -> None:
    browser.open(hostile_report)
    page = browser.page
    page.locator("details summary").first.click()
    page.locator("details summary").nth(1).click()
    page.wait_for_timeout(300)
    assert browser.dialogs == []
    assert browser.console_errors == []
    injected = page.evaluate(
        "() => [...document.querySelectorAll('img, a[href^=javascript], b, "
        "[onerror], [onload], [onclick]')].map(e => e.outerHTML)"
    )
    assert injected == []
    scripts = page.evaluate("() => [...document.scripts].filter(s => !s.type).length")
    assert scripts == 2

    text = page.evaluate("() => document.body.innerText")
    for name in HOSTILE_NAMES:
        assert f"/data/{name}" in text
        assert f"/waste/{name}" in text
    assert f"/data/{NAME_WITH_SLASHES}" in text
    browser.screenshot("hostile-report")


def test_hostile_names_in_treemap(browser: Any, hostile_report: Path) -> None:
    browser.open(hostile_report)
    page = browser.page
    labels = page.evaluate(
        "() => [...document.querySelectorAll('#image-1-figure-treemap text')]"
        ".map(t => t.textContent)"
    )
    assert any(HOSTILE_NAMES[0] in label for label in labels)
    assert any(HOSTILE_NAMES[1] in label for label in labels)

    tile = page.locator("#image-1-figure-treemap g.slice").filter(
        has_text=HOSTILE_NAMES[0]
    )
    tile.last.hover()
    hover = page.locator("#image-1-figure-treemap .hoverlayer")
    hover.wait_for(state="attached")
    page.wait_for_timeout(300)
    assert f"/data/{HOSTILE_NAMES[0]}" in hover.text_content()
    assert browser.dialogs == []
    browser.screenshot("hostile-report-hover", selector="#image-1-figure-treemap")


def table_texts(page: Any) -> dict[str, list[str]]:
    """Return the text of every row of every table, by table id."""
    return page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('table[id]')]"
        ".map(t => [t.id, [...t.tBodies[0].rows].map(r => r.innerText)]))"
    )


def test_compressed_and_plain_reports_show_the_same(
    browser: Any, sample_report: Path, plain_sample_report: Path
) -> None:
    browser.open(plain_sample_report)
    plain_tables = table_texts(browser.page)
    plain_figures = figure_count(browser.page)
    browser.open(sample_report)
    assert table_texts(browser.page) == plain_tables
    assert figure_count(browser.page) == plain_figures == (4, 4)
    assert browser.console_errors == []
    # The sample's 41 wasted versions and base layer's 279 entries.
    assert len(plain_tables["image-1-waste-table"]) == 41
    assert len(plain_tables["image-1-files-0"]) == 279


def test_report_without_decompression_stream(browser: Any, sample_report: Path) -> None:
    page = browser.page
    # Stands in for a browser older than DecompressionStream.
    page.add_init_script("delete window.DecompressionStream;")
    page.goto(sample_report.resolve().as_uri(), wait_until="load")
    page.wait_for_function("() => document.documentElement.dataset.ready")
    assert page.evaluate("() => document.documentElement.dataset.ready") == "failed"
    warnings = page.locator(".figure .warning, .warning:has(+ table)")
    assert warnings.count() == 4 + 1 + 4  # figures, waste table, 4 layers' files
    assert "--no-compress" in warnings.first.text_content()
    assert browser.console_errors == []


def test_two_image_report_draws_comparison(browser: Any, tmp_path: Path) -> None:
    path = report(
        [
            f"oci-archive:{sample_path('rm-later')}",
            f"oci-archive:{sample_path('combined-run')}",
        ],
        tmp_path / "two.html",
    )
    browser.open(path)
    page = browser.page
    comparison = page.evaluate(
        "() => [...document.querySelectorAll('#comparison .figure')]"
        ".filter(f => f.querySelector('.main-svg')).length"
    )
    assert comparison == 2
    total, drawn = figure_count(page)
    assert total == drawn
    assert page.locator("#comparison table").count() >= 1
    assert browser.console_errors == []
    browser.screenshot("two-image-report")


def test_spoofing_names_show_escaped(browser: Any, tmp_path: Path) -> None:
    from handmade import Layer, file, write_oci_archive

    # U+202E shows "rtl\u202etxt.exe" as "rtlexe.txt"; ESC starts a terminal
    # sequence. Both must show as escapes, in the tables and the treemap.
    names = ["rtl\u202etxt.exe", "esc\x1b[31mred.txt"]
    layers = [Layer([file(name, b"x" * 100) for name in names])]
    archive = write_oci_archive(tmp_path / "spoof.tar", layers)
    path = report(f"oci-archive:{archive}", tmp_path / "spoof.html")
    browser.open(path)
    page = browser.page
    cells = page.evaluate(
        "() => [...document.querySelectorAll('#image-1-files-0 td.path')]"
        ".map(td => td.textContent)"
    )
    assert sorted(cells) == ["/esc\\x1b[31mred.txt", "/rtl\\u202etxt.exe"]
    labels = page.evaluate(
        "() => [...document.querySelectorAll('#image-1-figure-treemap text')]"
        ".map(t => t.textContent).join(' ')"
    )
    assert "rtl\\u202etxt.exe" in labels
    assert "\u202e" not in page.evaluate("() => document.body.innerText")
    assert browser.console_errors == []


def test_charts_offer_no_cloud_upload(browser: Any, sample_report: Path) -> None:
    # plotly's "Share chart" button sends a figure's data to plotly's cloud,
    # which an offline report of an image must never offer.
    browser.open(sample_report)
    page = browser.page
    titles = page.evaluate(
        "() => [...document.querySelectorAll('.modebar-btn')]"
        ".map(b => b.getAttribute('data-title'))"
    )
    assert "Download plot as a PNG" in titles
    assert not [title for title in titles if "Share" in (title or "")]
    contexts = page.evaluate(
        "() => [...document.querySelectorAll('.figure')]"
        ".map(f => [f._context.showSendToCloud, f._context.plotlyServerURL])"
    )
    assert contexts
    assert all(context == [False, ""] for context in contexts)
