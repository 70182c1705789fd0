"""``layerlab scenarios list|build|report``: build and measure four scenarios."""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Iterable
from typing import Any

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, TextColumn
from rich.table import Table
from rich.text import Text

from ._cli_report import add_page_options
from ._terminal import plain
from .cli import RichProgress, print_json

_STAND_IN_CHOICES = {"auto": None, "always": True, "never": False}


def register(subparsers: Any) -> None:
    """Add ``scenarios`` with its ``list``, ``build`` and ``report`` subcommands."""
    parser = subparsers.add_parser(
        "scenarios",
        help="build the four classic Dockerfile scenarios and measure them",
        description="Build the Dockerfile variants of the four scenarios (build "
        "cache, multistage, the rm that does not shrink, squash) through the "
        "Docker Engine, measure sizes, layers, build and rebuild times and "
        "cache hits, and set the sizes beside the expected sizes that "
        "'layerlab scenarios list' shows.",
    )
    commands = parser.add_subparsers(dest="scenarios_command", metavar="COMMAND")
    parser.set_defaults(func=lambda args: _help(parser))

    listing = commands.add_parser("list", help="list the scenarios and variants")
    listing.add_argument(
        "--json", action="store_true", help="print a JSON array instead of a table"
    )
    listing.set_defaults(func=_list)

    building = commands.add_parser(
        "build",
        help="build scenarios and print the results table",
        description="Build the variants of each SCENARIO (all by default), "
        "reusing the build cache, rebuild after each variant's edit, and "
        "print sizes, layers, times and cache hits beside the expected sizes.",
    )
    _add_build_options(building)
    building.add_argument(
        "--csv", metavar="FILE", help="also write the results table as CSV"
    )
    building.add_argument(
        "--json", action="store_true", help="print JSON records instead of tables"
    )
    building.set_defaults(func=_build)

    reporting = commands.add_parser(
        "report",
        help="build scenarios and write an HTML report of their images",
        description="Build like 'build', then write one self-contained HTML "
        "file: the results beside the expected sizes, then a section per image.",
    )
    _add_build_options(reporting)
    reporting.add_argument(
        "-o",
        "--output",
        default="layerlab-scenarios.html",
        metavar="FILE",
        help="HTML file to write (default: layerlab-scenarios.html)",
    )
    add_page_options(reporting)
    reporting.set_defaults(func=_report)


def _add_build_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "scenarios",
        nargs="*",
        metavar="SCENARIO",
        help="name or number of a scenario (see 'layerlab scenarios list'); "
        "all by default",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="run every step of each first build instead of reusing the build cache",
    )
    parser.add_argument(
        "--no-rebuild",
        action="store_true",
        help="skip the rebuild after each variant's edit",
    )
    parser.add_argument(
        "--awscli-stand-in",
        choices=sorted(_STAND_IN_CHOICES),
        default="auto",
        help="serve the stand-in AWS CLI zip: 'auto' when the download site "
        "is unreachable (default), 'always' or 'never'",
    )


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _list(args: argparse.Namespace) -> int:
    from .scenarios import list_scenarios

    scenarios = list_scenarios()
    if args.json:
        document = [
            {
                "number": scenario.number,
                "name": scenario.name,
                "title": scenario.title,
                "lesson": scenario.lesson,
                "bases": list(scenario.bases),
                "notebook": scenario.notebook,
                "variants": [
                    {
                        "name": variant.name,
                        "summary": variant.summary,
                        "tag": scenario.tag(variant.name),
                        "talk": variant.slide_text,
                    }
                    for variant in scenario.variants
                ],
            }
            for scenario in scenarios
        ]
        print_json(document)
        return 0

    table = Table(title="scenarios", title_justify="left", show_lines=True)
    for column in ("#", "scenario", "variants", "talk"):
        table.add_column(column)
    for scenario in scenarios:
        variants = scenario.variants
        table.add_row(
            str(scenario.number),
            _lines([scenario.name, scenario.title]),
            _lines(f"{variant.name}: {variant.summary}" for variant in variants),
            _lines(variant.slide_text or "" for variant in variants),
        )
    Console().print(table)
    return 0


def _run_builds(args: argparse.Namespace) -> list[Any]:
    from .cli import stderr_console
    from .scenarios import build_scenarios

    hook = _StepProgress(stderr_console())
    return build_scenarios(
        args.scenarios or None,
        rebuild=not args.no_rebuild,
        no_cache=args.no_cache,
        awscli_stand_in=_STAND_IN_CHOICES[args.awscli_stand_in],
        progress=hook,
    )


def _build(args: argparse.Namespace) -> int:
    from .scenarios import against_slides, results_table

    runs = _run_builds(args)
    results = results_table(runs)
    if args.csv:
        results.to_csv(args.csv, index=False)
    if args.json:
        document = {
            "results": json.loads(results.to_json(orient="records")),
            "against_talk": json.loads(
                against_slides(results).to_json(orient="records")
            ),
            "notes": _notes(runs),
        }
        print_json(document)
        return 0

    console = Console()
    console.print(_results_table(results))
    for note in _notes(runs):
        console.print(plain(f"note: {note}"))
    return 0


def _report(args: argparse.Namespace) -> int:
    from ._image import open_image
    from ._report import report
    from .cli import print_written, stderr_console
    from .scenarios import against_slides, results_table

    runs = _run_builds(args)
    results = results_table(runs)
    section = _comparison_html(against_slides(results), results, _notes(runs))
    tags = list(dict.fromkeys(results["tag"]))
    with contextlib.ExitStack() as stack:
        with stderr_console().status("reading the images"):
            images = [
                stack.enter_context(open_image(f"docker-daemon:{tag}")) for tag in tags
            ]
        path = report(
            images,
            args.output,
            inline_plotlyjs=not args.cdn,
            compress=args.compress,
            title="layerlab scenarios",
            comparison_html=section,
        )
    print_written(path)
    return 0


def _notes(runs: list[Any]) -> list[str]:
    return list(dict.fromkeys(note for run in runs for note in run.notes))


def _comparison_html(
    against: pd.DataFrame, results: pd.DataFrame, notes: list[str]
) -> str:
    import html

    from .scenarios import results_view

    # DataFrame.to_html escapes every cell by default.
    items = "".join(f"<li>{html.escape(note)}</li>" for note in notes)
    return (
        "<section><h2>Measured beside the talk</h2>"
        + _blank_missing(against.round(2)).to_html(index=False)
        + "<h2>Builds</h2>"
        + _blank_missing(results_view(results)).to_html(index=False)
        + (f"<ul>{items}</ul>" if items else "")
        + "</section>"
    )


def _blank_missing(table: pd.DataFrame) -> pd.DataFrame:
    return table.astype(object).where(table.notna(), "")


def _results_table(results: pd.DataFrame) -> Table:
    from .scenarios import against_slides

    talk = against_slides(results).set_index(["scenario", "variant"])["talk"]
    table = Table(title="scenario results", title_justify="left")
    for column in ("scenario", "variant", "size", "talk", "layers", "build",
                   "rebuild", "cache hits"):  # fmt: skip
        table.add_column(
            column, justify="left" if column in ("scenario", "variant") else "right"
        )
    for row in results.itertuples(index=False):
        table.add_row(
            plain(row.scenario),
            plain(row.variant),
            f"{row.size_mb:.0f} MB",
            plain(_text(talk.get((row.scenario, row.variant)))),
            str(row.layers),
            _seconds(row.build_s),
            _seconds(row.rebuild_s),
            _hits(row),
        )
    return table


def _lines(texts: Iterable[str]) -> Text:
    # One cell with a line per text. plain() escapes a newline inside a text,
    # so each text stays on its own line.
    return Text("\n").join(plain(text) for text in texts)


def _text(value: Any) -> str:
    return "" if value is None or pd.isna(value) else str(value)


def _seconds(value: Any) -> str:
    return "" if pd.isna(value) else f"{value:.1f} s"


def _hits(row: Any) -> str:
    parts = []
    if not pd.isna(row.build_steps):
        parts.append(f"{row.build_cache_hits}/{row.build_steps}")
    if not pd.isna(row.rebuild_steps):
        parts.append(f"{row.rebuild_cache_hits}/{row.rebuild_steps}")
    return " then ".join(parts)


class _StepProgress(RichProgress):
    """A rich bar on standard error counting the steps of each build."""

    def _columns(self) -> tuple[ProgressColumn, ...]:
        return (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("steps"),
        )
