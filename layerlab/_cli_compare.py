"""The ``layerlab compare`` subcommand."""

from __future__ import annotations

import argparse
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from ._format import counted, human_bytes
from ._terminal import plain, root_path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``compare`` subcommand."""
    from .cli import add_image_options

    parser = subparsers.add_parser(
        "compare",
        help="compare two to ten images: sizes, shared layers, file changes",
        description="Compare images with the first one: sizes, layers shared by "
        "diff_id, what a pull costs once the first image's layers are present "
        "(matched by chain ID, as Docker Engine does), the paths of the final "
        "filesystem that were added, removed or changed, and the size change "
        "per directory.",
    )
    parser.add_argument("refs", nargs="+", metavar="REF", help="2 to 10 images")
    add_image_options(parser)
    parser.add_argument(
        "--label",
        action="append",
        metavar="NAME",
        help="name of an image in the output, once per REF in order "
        "(default: the file or image names)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--top",
        type=int,
        default=20,
        metavar="N",
        help="changed paths and directories to list per image (default 20)",
    )
    parser.set_defaults(func=_compare)


def _compare(args: argparse.Namespace) -> int:
    from ._compare import MAX_IMAGES, compare
    from ._errors import OptionError
    from .cli import open_from_args, print_json

    if not 2 <= len(args.refs) <= MAX_IMAGES:
        raise OptionError(
            f"compare takes 2 to {MAX_IMAGES} images, got {len(args.refs)}"
        )
    images: list[Any] = []
    try:
        for ref in args.refs:
            images.append(open_from_args(args, ref))
        comparison = compare(*images, labels=args.label)
        if args.json:
            print_json(comparison_json(comparison, top=args.top))
        else:
            _print(comparison, Console(), args.top)
    finally:
        for image in images:
            image.close()
    return 0


def comparison_json(comparison: Any, *, top: int) -> dict[str, Any]:
    """Return the ``compare --json`` document."""
    return {
        "summary": _records(comparison.summary),
        "pull": _records(comparison.pull),
        "layers": _records(comparison.layers),
        "diffs": {
            label: _records(_changed(diff).head(top))
            for label, diff in comparison.diffs.items()
        },
        "directories": {
            label: _records(table[table["size_change"] != 0].head(top))
            for label, table in comparison.directories.items()
        },
    }


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    # JSON has no NaN or pandas NA: missing values become null.
    plain = table.astype(object).where(table.notna(), None)
    records = plain.to_dict(orient="records")
    return [{key: _plain(value) for key, value in row.items()} for row in records]


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return value


def _changed(diff: pd.DataFrame) -> pd.DataFrame:
    return diff[diff["change"] != "unchanged"]


def _print(comparison: Any, console: Console, top: int) -> None:
    table = Table(
        title="images",
        title_justify="left",
        caption="to pull: the first image from nothing, each other once the "
        "first is present",
        caption_justify="left",
    )
    # Labels often differ only at the end (app:1, app:2), so a long one is
    # folded onto more lines, never cut short with an ellipsis.
    table.add_column("label", overflow="fold")
    figures = ("layers", "content", "stored", "paths", "reclaimable")
    for name in (*figures, "to pull"):
        table.add_column(name, justify="right")
    for row, pull in zip(comparison.summary.itertuples(), comparison.pull.itertuples()):
        table.add_row(
            plain(row.label),
            str(row.layers),
            human_bytes(row.content_bytes),
            human_bytes(row.compressed_bytes),
            str(row.paths),
            human_bytes(row.reclaimable_bytes),
            human_bytes(pull.bytes_to_pull_after_baseline),
        )
    console.print(table)
    for label, diff in comparison.diffs.items():
        net = comparison.net_change(label)
        console.print(_diff_table(comparison.labels[0], label, diff, net, top))
        console.print(_directory_table(label, comparison.directories[label], top))


def _diff_table(
    baseline: str, label: str, diff: pd.DataFrame, net: int, top: int
) -> Table:
    changed = _changed(diff)
    title = (
        f"{label} against {baseline}: {counted(len(changed), 'path')} changed, "
        f"net {human_bytes(net)}"
    )
    table = Table(title=plain(title), title_justify="left")
    table.add_column("change")
    table.add_column("size change", justify="right")
    table.add_column("path", overflow="fold")
    for row in changed.head(top).itertuples():
        table.add_row(
            str(row.change),
            human_bytes(int(row.size_change)),
            plain(root_path(str(row.path))),
        )
    return table


def _directory_table(label: str, directories: pd.DataFrame, top: int) -> Table:
    title = plain(f"size change per directory: {label}")
    table = Table(title=title, title_justify="left")
    table.add_column("directory", overflow="fold")
    for name in ("before", "after", "change"):
        table.add_column(name, justify="right")
    changed = directories[directories["size_change"] != 0]
    for row in changed.head(top).itertuples():
        table.add_row(
            plain(root_path(str(row.directory))),
            human_bytes(int(row.size_before)),
            human_bytes(int(row.size_after)),
            human_bytes(int(row.size_change)),
        )
    return table
