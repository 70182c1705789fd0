"""The ``layerlab`` command line: each subcommand only calls the library.

Exit codes: 0 success, 1 a check failed (``ci``), 2 an error (bad input,
unreachable engine, invalid options), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from ._errors import LayerlabError, OptionError
from ._format import human_bytes, short_command, visible_text
from ._terminal import percent, plain, plain_lines, root_path, visible_lines

# Feature modules that add their own subcommands through register(subparsers).
FEATURE_MODULES = ("ci", "report", "squash", "compare", "scenarios")

logger = logging.getLogger("layerlab")


class RichProgress:
    """A progress hook that draws a rich bar of bytes on standard error."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._progress: Progress | None = None
        self._task: Any = None

    def _columns(self) -> tuple[ProgressColumn, ...]:
        return (
            # A description names the image, so rich must not read markup in it.
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )

    def start(self, total: int, description: str) -> None:
        if not self._console.is_terminal or total <= 0:
            return
        self._progress = Progress(
            *self._columns(), console=self._console, transient=True
        )
        self._progress.start()
        self._task = self._progress.add_task(visible_text(description), total=total)

    def advance(self, amount: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, amount)

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def stderr_console() -> Console:
    """Return the console used for progress and errors."""
    return Console(stderr=True)


def add_image_options(parser: argparse.ArgumentParser) -> None:
    """Add the options every image-reading subcommand shares."""
    parser.add_argument(
        "--platform",
        metavar="OS/ARCH",
        help="platform to pick from a multi-platform index (default: this "
        "host's); a single-platform image must match it",
    )
    parser.add_argument(
        "--no-hash",
        action="store_true",
        help="do not hash file contents (faster; identical rewrites then count "
        "as modified)",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="neither read nor write the parsed-layer cache",
    )


def open_from_args(args: argparse.Namespace, ref: str) -> Any:
    """Open ``ref`` with the shared image options, showing a progress bar."""
    from ._image import open_image

    started = time.perf_counter()
    image = open_image(
        ref,
        platform=args.platform,
        hash_content=not args.no_hash,
        cache=not args.no_cache,
        progress=RichProgress(stderr_console()),
    )
    if logger.isEnabledFor(logging.INFO):
        logger.info(
            "opened %s, platform %s: %d layers in %.2f s",
            _source_text(ref),
            _platform_text(image.config),
            len(image.layers),
            time.perf_counter() - started,
        )
    return image


def _source_text(ref: str) -> str:
    # open_image has parsed ref already. Parsing it again reads the tar
    # headers of a plain path, so open_from_args does it only for the log.
    from ._refs import parse_reference

    reference = parse_reference(ref)
    kind = _LOCATION_KINDS.get(reference.transport, "file")
    text = f"{reference.transport} {kind} {reference.location}"
    return f"{text}, image {reference.name}" if reference.name else text


_LOCATION_KINDS = {"oci": "directory", "docker-daemon": "image"}


def _platform_text(config: dict[str, Any]) -> str:
    parts = [config.get(key) for key in ("os", "architecture", "variant")]
    return "/".join(str(part) for part in parts if part) or "unknown"


def print_json(document: Any) -> None:
    """Print ``document`` as indented JSON on standard output."""
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")


def print_written(path: Path) -> None:
    """Print the path and size of a file the command wrote, on standard output."""
    size = human_bytes(path.stat().st_size)
    # soft_wrap keeps a long path on one line, as scripts that read it expect.
    Console().print(plain(f"wrote {path} ({size})"), soft_wrap=True)


def _analyze(args: argparse.Namespace) -> int:
    for directory, form in ((args.parquet, "parquet"), (args.csv, "csv")):
        if directory:
            _check_table_outputs(args.ref, directory, form)
    image = open_from_args(args, args.ref)
    with image:
        if args.parquet:
            _write_tables(image, args.parquet, "parquet")
        if args.csv:
            _write_tables(image, args.csv, "csv")
        if args.json:
            print_json(analysis_json(image))
        else:
            print_summary(image, Console(), top=args.top)
    return 0


TABLE_NAMES = ("layers", "files", "filesystem", "waste", "history")


def _check_table_outputs(reference: str, directory: str, form: str) -> None:
    """Check before reading that the tables can go to ``directory``."""
    from ._write import check_not_input

    if os.path.exists(directory) and not os.path.isdir(directory):
        raise OptionError(f"{directory} exists and is not a directory")
    for name in TABLE_NAMES:
        check_not_input(os.path.join(directory, f"{name}.{form}"), reference)


def _write_tables(image: Any, directory: str, form: str) -> None:
    import contextlib

    from ._write import replacing

    os.makedirs(directory, exist_ok=True)
    # Every table is written to a temporary file first and all of them are
    # renamed at the end, so an error or Ctrl-C while writing leaves the
    # previous set of tables as it was.
    with contextlib.ExitStack() as stack:
        for name in TABLE_NAMES:
            target = os.path.join(directory, f"{name}.{form}")
            path = stack.enter_context(replacing(target))
            table = getattr(image, name)
            if form == "parquet":
                table.to_parquet(path, index=False)
            else:
                table.to_csv(path, index=False)


def analysis_json(image: Any) -> dict[str, Any]:
    """Return the ``analyze --json`` document for ``image``."""
    metrics = image.metrics
    layers = []
    for row in image.layers.itertuples(index=False):
        layers.append(
            {
                "index": int(row.layer),
                "digest": _text(row.digest),
                "diff_id": _text(row.diff_id),
                "instruction": _text(row.instruction),
                "created_by": _text(row.created_by),
                "content_size": int(row.content_size),
                "uncompressed_size": int(row.uncompressed_size),
                "compressed_size": int(row.compressed_size),
                "added": int(row.added),
                "modified": int(row.modified),
                "deleted": int(row.deleted),
                "hidden_bytes": int(row.hidden_bytes),
            }
        )
    return {
        "reference": image.reference,
        "size_bytes": metrics.size_bytes,
        "user_size_bytes": int(metrics.dive.user_size_bytes),
        "efficiency": metrics.efficiency,
        "inefficient_bytes": metrics.inefficient_bytes,
        # JSON has no NaN or infinity: dive's fraction is undefined without
        # user layers, and null marks that.
        "user_wasted_percent": _finite(metrics.user_wasted_percent),
        "reclaimable_bytes": metrics.reclaimable_bytes,
        "wasted_by_reason": metrics.wasted_by_reason,
        "content_bytes": metrics.content_bytes,
        "final_bytes": metrics.final_bytes,
        "compressed_bytes": int(image.layers["compressed_size"].sum()),
        "layers": layers,
        "warnings": list(image.warnings),
    }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _text(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


def print_summary(image: Any, console: Console, *, top: int = 10) -> None:
    """Print a readable summary of ``image``: layers, metrics and top waste."""
    metrics = image.metrics
    console.print(plain(image.reference, style="bold"))
    console.print(_layers_table(image))

    console.print("[bold]dive's metrics[/bold] (computed as dive 0.13 does)")
    console.print(f"  efficiency          {metrics.efficiency:.4%}")
    console.print(f"  inefficient bytes   {human_bytes(metrics.inefficient_bytes)}")
    console.print(f"  user wasted         {percent(metrics.user_wasted_percent)}")
    console.print("[bold]layerlab's exact metrics[/bold]")
    console.print(
        f"  reclaimable bytes   {human_bytes(metrics.reclaimable_bytes)} "
        "(what squashing every layer saves)"
    )
    for reason, size in metrics.wasted_by_reason.items():
        if size:
            console.print(f"    {reason:<17} {human_bytes(size)}")
    if len(image.waste):
        console.print(_waste_table(image, top))
    for warning in image.warnings:
        # Warnings quote paths from the image, so rich must not read markup.
        console.print(Text.assemble(("warning:", "yellow"), " ", plain(warning)))


def _layers_table(image: Any) -> Table:
    table = Table(title="layers", title_justify="left")
    for name in ("#", "instruction", "content", "stored", "+", "~", "-", "hidden"):
        table.add_column(name, justify="left" if name == "instruction" else "right")
    for row in image.layers.itertuples(index=False):
        command = short_command(_text(row.created_by), _text(row.instruction), width=60)
        table.add_row(
            str(row.layer),
            plain(command),
            human_bytes(row.content_size),
            human_bytes(row.compressed_size),
            str(row.added),
            str(row.modified),
            str(row.deleted),
            human_bytes(row.hidden_bytes),
        )
    return table


def _waste_table(image: Any, top: int) -> Table:
    table = Table(title=f"largest waste (top {top})", title_justify="left")
    for name in ("size", "reason", "layer", "hidden by"):
        table.add_column(name, justify="right")
    # Folding keeps a long path whole, where an ellipsis would cut its file name.
    table.add_column("path", overflow="fold")
    for row in image.waste.head(top).itertuples(index=False):
        table.add_row(
            human_bytes(row.size),
            str(row.reason),
            str(row.layer),
            str(row.hidden_by),
            plain(root_path(str(row.path))),
        )
    return table


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="layerlab",
        description="Understand container images: files per layer, waste, "
        "dive-compatible metrics, reports.",
    )
    parser.add_argument(
        "--version", action="version", version=f"layerlab {__version__}"
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log which image source was read, what came from the cache and "
        "how long it took, and with -vv each layer",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")

    analyze = subparsers.add_parser(
        "analyze",
        help="summarise an image's layers, waste and metrics",
        description="Read an image and print its layers, dive's metrics and "
        "layerlab's exact waste figures.",
    )
    analyze.add_argument(
        "ref",
        metavar="REF",
        help="docker-archive:FILE, oci-archive:FILE, oci:DIR, "
        "docker-daemon:NAME, a path or an image name",
    )
    add_image_options(analyze)
    analyze.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object instead of the summary",
    )
    analyze.add_argument(
        "--parquet", metavar="DIR", help="write the tables as Parquet files into DIR"
    )
    analyze.add_argument(
        "--csv", metavar="DIR", help="write the tables as CSV files into DIR"
    )
    analyze.add_argument(
        "--top",
        type=int,
        default=10,
        metavar="N",
        help="rows of the waste table to print (default 10)",
    )
    analyze.set_defaults(func=_analyze)

    for feature in FEATURE_MODULES:
        try:
            module = importlib.import_module(f"layerlab._cli_{feature}")
        except ModuleNotFoundError as error:
            if error.name != f"layerlab._cli_{feature}":
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    # The command line owns its process, so it may choose Arrow's allocator:
    # the system one returns freed memory, where mimalloc kept about 50 MB.
    pa.set_memory_pool(pa.system_memory_pool())
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except LayerlabError as error:
        _print_error(str(error))
        return 2
    except BrokenPipeError:
        # The reader (head, less) went away; that is not an error of ours.
        sys.stderr.close()
        return 0
    except OSError as error:
        # Writing an output the user named failed (missing or read-only
        # directory, a directory in place of a file).
        _print_error(f"{error.strerror or error}: {error.filename or ''}".rstrip(": "))
        return 2
    except KeyboardInterrupt:
        return 130


def _print_error(message: str) -> None:
    print_error(stderr_console(), message)


def print_error(console: Console, message: str) -> None:
    """Print ``message`` as layerlab's error line, with image strings literal."""
    console.print(plain_lines(f"layerlab: error: {message}"), soft_wrap=True)


class _StderrHandler(logging.StreamHandler):
    """Write each record to the ``sys.stderr`` of the moment.

    rich's live progress display and pytest's capture both replace
    ``sys.stderr`` after the handler is made. Writing through the current
    one keeps log lines above the progress bar.
    """

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)

    def format(self, record: logging.LogRecord) -> str:
        # Messages quote references and paths from images, so escape
        # sequences in them are written as visible escapes.
        return visible_lines(super().format(record))


def _configure_logging(verbosity: int) -> None:
    # Configure layerlab's logger alone, so that -vv does not turn on the
    # debug output of the docker SDK and urllib3.
    level = logging.WARNING
    if verbosity == 1:
        level = logging.INFO
    elif verbosity > 1:
        level = logging.DEBUG
    for handler in list(logger.handlers):
        if isinstance(handler, _StderrHandler):
            logger.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("layerlab: %(levelname)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)


if __name__ == "__main__":
    sys.exit(main())
