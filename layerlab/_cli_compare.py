"""The ``layerlab compare`` subcommand."""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console
from rich.table import Table

from ._format import human_bytes


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``compare`` subcommand."""
    from .cli import add_image_options

    parser = subparsers.add_parser(
        "compare",
        help="compare two to ten images: sizes, shared layers, file changes",
        description="Compare images with the first one: sizes, layers shared by "
        "diff_id (what a pull costs once the first image's layers are present), "
        "and the paths of the final filesystem that were added, removed or "
        "changed.",
    )
    parser.add_argument("refs", nargs="+", metavar="REF", help="2 to 10 images")
    add_image_options(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--top",
        type=int,
        default=20,
        metavar="N",
        help="changed paths to list per image (default 20)",
    )
    parser.set_defaults(func=_compare)


def _compare(args: argparse.Namespace) -> int:
    from ._compare import compare
    from ._errors import OptionError
    from .cli import open_from_args

    if not 2 <= len(args.refs) <= 10:
        raise OptionError(f"compare takes 2 to 10 images, got {len(args.refs)}")
    images = [open_from_args(args, ref) for ref in args.refs]
    comparison = compare(*images)
    if args.json:
        document = {
            "summary": comparison.summary.to_dict(orient="records"),
            "pull": comparison.pull.to_dict(orient="records"),
            "diffs": {
                label: _changed(diff)
                .head(args.top)
                .astype(object)
                .where(_changed(diff).head(args.top).notna(), None)
                .to_dict(orient="records")
                for label, diff in comparison.diffs.items()
            },
        }
        json.dump(document, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return 0
    _print(comparison, Console(), args.top)
    return 0


def _changed(diff):  # type: ignore[no-untyped-def]
    return diff[diff["change"] != "unchanged"]


def _print(comparison, console: Console, top: int) -> None:  # type: ignore[no-untyped-def]
    table = Table(title="images", title_justify="left")
    for name in (
        "label",
        "layers",
        "content",
        "compressed",
        "paths",
        "reclaimable",
        "to pull after the first",
    ):
        table.add_column(name, justify="left" if name == "label" else "right")
    for row, pull in zip(comparison.summary.itertuples(), comparison.pull.itertuples()):
        table.add_row(
            row.label,
            str(row.layers),
            human_bytes(row.content_bytes),
            human_bytes(row.compressed_bytes),
            str(row.paths),
            human_bytes(row.reclaimable_bytes),
            human_bytes(pull.bytes_to_pull_after_baseline),
        )
    console.print(table)
    for label, diff in comparison.diffs.items():
        changed = _changed(diff)
        detail = Table(
            title=f"{label} against {comparison.labels[0]}: "
            f"{len(changed)} paths changed, net "
            f"{human_bytes(int(diff['size_change'].sum()))}",
            title_justify="left",
        )
        for name in ("change", "size change", "path"):
            detail.add_column(
                name, justify="left" if name != "size change" else "right"
            )
        for row in changed.head(top).itertuples():
            detail.add_row(
                str(row.change), human_bytes(int(row.size_change)), str(row.path)
            )
        console.print(detail)
