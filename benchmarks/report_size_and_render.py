"""Measure the HTML report of an image: file size and time to draw in Chromium.

Usage: python benchmarks/report_size_and_render.py REF [REF ...] [--runs N]

For each image the script writes the report three ways: compressed (the
default), plain (``--no-compress``) and with plotly.js linked from its CDN
(``--cdn``, size only, as drawing it would need the network). It then opens
the two offline reports in Debian's Chromium through Playwright, each in a
fresh page, and times from navigation to the moment the report marks itself
ready (every table filled, every figure drawn). It prints the sizes, the
median times over the runs, and the compressed report's figures as a ratio
of the plain one's. The first open of each report is a warm-up and is not
counted.

Set LAYERLAB_CHROMIUM to use another Chromium than /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from layerlab import open_image, report

CHROMIUM = os.environ.get("LAYERLAB_CHROMIUM", "/usr/bin/chromium")
# A fresh headless Chromium that reaches no host of its own accord.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _write(reference: str, directory: Path) -> dict[str, tuple[Path, float]]:
    """Write the three reports; return each one's path and seconds to write."""
    written = {}
    with open_image(reference) as image:
        for name, options in (
            ("compressed", {}),
            ("plain", {"compress": False}),
            ("cdn", {"inline_plotlyjs": False}),
        ):
            path = directory / f"{name}.html"
            start = time.perf_counter()
            report(image, path, **options)
            written[name] = (path, time.perf_counter() - start)
    return written


def _draw_seconds(context: object, path: Path) -> float:
    page = context.new_page()  # type: ignore[attr-defined]
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        start = time.perf_counter()
        page.goto(path.as_uri(), wait_until="load", timeout=180_000)
        page.wait_for_function(
            "() => document.documentElement.dataset.ready", timeout=180_000
        )
        seconds = time.perf_counter() - start
        state = page.evaluate("() => document.documentElement.dataset.ready")
    finally:
        page.close()
    if state != "true" or errors:
        raise SystemExit(f"{path.name} did not draw: {state} {errors}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("refs", nargs="+", metavar="REF")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    print(
        "| image | compressed MB | plain MB | cdn MB | size ratio "
        "| compressed s | plain s | time ratio |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as scratch, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        for index, reference in enumerate(args.refs):
            directory = Path(scratch) / str(index)
            directory.mkdir()
            written = _write(reference, directory)
            sizes = {
                name: path.stat().st_size / 1e6 for name, (path, _) in written.items()
            }
            times = {}
            for name in ("compressed", "plain"):
                path = written[name][0]
                _draw_seconds(context, path)
                runs = [_draw_seconds(context, path) for _ in range(args.runs)]
                times[name] = statistics.median(runs)
            print(
                f"| {reference} | {sizes['compressed']:.2f} | {sizes['plain']:.2f} "
                f"| {sizes['cdn']:.2f} | {sizes['compressed'] / sizes['plain']:.2f} "
                f"| {times['compressed']:.2f} | {times['plain']:.2f} "
                f"| {times['compressed'] / times['plain']:.2f} |",
                flush=True,
            )
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
