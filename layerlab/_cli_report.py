"""The ``report`` and ``samples`` subcommands."""

from __future__ import annotations

import argparse
import contextlib
from typing import Any

from rich.console import Console
from rich.table import Table

from ._errors import OptionError
from ._format import human_bytes
from ._report import MAX_ROWS_PER_LAYER, MAX_WASTE_ROWS, report, validate_target
from ._samples import DEFAULT_SAMPLE, list_samples, sample_path


def register(subparsers: Any) -> None:
    """Add ``report`` and ``samples`` to the command line."""
    from .cli import add_image_options

    parser = subparsers.add_parser(
        "report",
        help="write a self-contained HTML report of one or more images",
        description="Read each image and write one HTML file with its metrics, "
        "a size waterfall, a treemap and searchable tables. The file opens "
        f"offline. Without REF or --sample, the report is on the bundled "
        f"sample {DEFAULT_SAMPLE!r} (no Docker needed).",
    )
    parser.add_argument(
        "refs",
        nargs="*",
        metavar="REF",
        help="docker-archive:FILE, oci-archive:FILE, oci:DIR, "
        "docker-daemon:NAME, a path or an image name",
    )
    parser.add_argument(
        "-o",
        "--output",
        default="layerlab-report.html",
        metavar="FILE",
        help="HTML file to write (default: layerlab-report.html)",
    )
    parser.add_argument(
        "--sample",
        action="append",
        default=[],
        metavar="NAME",
        help="add a bundled sample image after the REFs (see 'layerlab samples'); "
        "repeatable; the first image is the one the others are compared with",
    )
    add_page_options(parser)
    parser.add_argument("--title", help="page title (default: from the references)")
    parser.add_argument(
        "--max-rows",
        type=int,
        default=MAX_ROWS_PER_LAYER,
        metavar="N",
        help=f"entries listed per layer, largest first (default {MAX_ROWS_PER_LAYER})",
    )
    parser.add_argument(
        "--max-waste-rows",
        type=int,
        default=MAX_WASTE_ROWS,
        metavar="N",
        help=f"rows of the waste table, largest first (default {MAX_WASTE_ROWS})",
    )
    add_image_options(parser)
    parser.set_defaults(func=_report)

    samples = subparsers.add_parser(
        "samples",
        help="list the sample images bundled with layerlab",
        description="List the bundled sample images: small images built by the "
        "Docker Engine that show deleting in a later step, deleting in the "
        "same step, a multistage build and a squashed image.",
    )
    samples.add_argument(
        "--json", action="store_true", help="print a JSON array instead of a table"
    )
    samples.set_defaults(func=_samples)


def add_page_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--cdn`` and ``--no-compress``, which set how the HTML page is stored."""
    parser.add_argument(
        "--cdn",
        action="store_true",
        help="load plotly.js from its CDN instead of embedding it (about 2 MB "
        "smaller, but the report then needs a network connection)",
    )
    parser.add_argument(
        "--no-compress",
        dest="compress",
        action="store_false",
        help="store plotly.js, the figures and the tables as plain text, about "
        "three times larger; for browsers older than Chrome 80, Firefox 113 or "
        "Safari 16.4, which cannot inflate them",
    )


def _report(args: argparse.Namespace) -> int:
    from .cli import open_from_args, print_written, stderr_console

    references = list(args.refs)
    references += [f"oci-archive:{sample_path(name)}" for name in args.sample]
    if not references:
        references.append(f"oci-archive:{sample_path(DEFAULT_SAMPLE)}")

    # Checked before reading, which can take a while on a large image.
    for option, value in (
        ("--max-rows", args.max_rows),
        ("--max-waste-rows", args.max_waste_rows),
    ):
        if value < 0:
            raise OptionError(f"{option} must be 0 or more, not {value}")
    validate_target(args.output, references)
    console = stderr_console()
    with contextlib.ExitStack() as stack:
        images = [stack.enter_context(open_from_args(args, ref)) for ref in references]
        with console.status("writing the report"):
            path = report(
                images,
                args.output,
                inline_plotlyjs=not args.cdn,
                compress=args.compress,
                title=args.title,
                max_rows_per_layer=args.max_rows,
                max_waste_rows=args.max_waste_rows,
            )
    print_written(path)
    return 0


def _samples(args: argparse.Namespace) -> int:
    from .cli import print_json

    samples = list_samples()
    if args.json:
        document = [
            {
                "name": sample.name,
                "title": sample.title,
                "description": sample.description,
                "reference": sample.reference,
                "size_bytes": sample.path.stat().st_size,
            }
            for sample in samples
        ]
        print_json(document)
        return 0

    table = Table(title="bundled samples", title_justify="left")
    table.add_column("name")
    table.add_column("archive", justify="right")
    table.add_column("what it shows")
    for sample in samples:
        table.add_row(
            sample.name,
            human_bytes(sample.path.stat().st_size),
            f"{sample.title}. {sample.description}",
        )
    console = Console()
    console.print(table)
    console.print("Report on one with: layerlab report --sample NAME", markup=False)
    return 0
