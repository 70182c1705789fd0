"""``layerlab ci``: check an image against dive's CI rules.

Exit codes: 0 every rule passed, 1 a rule failed, 2 an error (unreadable
image, invalid rule value, missing config file).
"""

from __future__ import annotations

import argparse
import math
import os
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ._ci import CIResult, evaluate_ci, load_ci_rules
from ._errors import LayerlabError
from ._format import counted, human_bytes
from ._terminal import percent, plain, root_path
from .cli import (
    add_image_options,
    open_from_args,
    print_error,
    print_json,
    stderr_console,
)

DEFAULT_CONFIG = ".dive-ci"
TOP_FILES = 10

_STATUS_STYLE = {"passed": "green", "failed": "bold red", "skipped": "blue"}
_STATUS_WORD = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}


def register(subparsers: Any) -> None:
    """Add the ``ci`` subcommand."""
    parser = subparsers.add_parser(
        "ci",
        help="check an image against dive's CI rules",
        description="Compute dive's efficiency, wasted bytes and user-wasted "
        "percent, and check them against rules read as dive reads them: from "
        f"the --ci-config file (default ./{DEFAULT_CONFIG} when it exists), "
        "then from the options below. Exit code 0 when every rule passes, 1 "
        "when one fails, 2 on an error.",
    )
    parser.add_argument(
        "ref",
        metavar="REF",
        help="docker-archive:FILE, oci-archive:FILE, oci:DIR, "
        "docker-daemon:NAME, a path or an image name",
    )
    add_image_options(parser)
    parser.add_argument(
        "--ci-config",
        metavar="FILE",
        help=f"YAML rules file in dive's .dive-ci format (default: ./{DEFAULT_CONFIG} "
        "if it exists)",
    )
    _add_rule_options(parser)
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object instead of text"
    )
    parser.set_defaults(func=run_ci)


def _add_rule_options(parser: argparse.ArgumentParser) -> None:
    # dive's own spellings are accepted too, so CI scripts carry over.
    parser.add_argument(
        "--lowest-efficiency",
        "--lowestEfficiency",
        metavar="RATIO",
        help="fail below this efficiency, a ratio from 0 to 1, or 'disabled' "
        "(dive's default 0.9)",
    )
    parser.add_argument(
        "--highest-wasted-bytes",
        "--highestWastedBytes",
        metavar="BYTES",
        help="fail above this many wasted bytes, e.g. 20MB (SI) or 19MiB (IEC), "
        "or 'disabled' (dive's default)",
    )
    parser.add_argument(
        "--highest-user-wasted-percent",
        "--highestUserWastedPercent",
        metavar="RATIO",
        help="fail when wasted bytes exceed this ratio of the bytes added above "
        "the first layer, from 0 to 1, or 'disabled' (dive's default 0.1)",
    )
    parser.add_argument(
        "--ignore",
        action="append",
        metavar="GLOB",
        help="leave paths matching GLOB (and everything below them) out of the "
        "figures; repeat for more globs",
    )
    parser.add_argument(
        "--min-wasted-bytes",
        metavar="BYTES",
        help="pass the two ratio rules while fewer bytes than this are wasted "
        "(default 0: no floor)",
    )


def run_ci(args: argparse.Namespace) -> int:
    """Run ``layerlab ci`` and return its exit code."""
    try:
        result, reference, rules_file = _evaluate(args)
    except LayerlabError as error:
        print_error(stderr_console(), str(error))
        return 2
    if args.json:
        print_json(result_json(result, reference, rules_file=rules_file))
    else:
        print_result(result, reference, Console(), rules_file=rules_file)
    return 0 if result.passed else 1


def _evaluate(args: argparse.Namespace) -> tuple[CIResult, str, str | None]:
    config = args.ci_config
    if config is None and os.path.isfile(DEFAULT_CONFIG):
        config = DEFAULT_CONFIG
    rules = load_ci_rules(
        config,
        {
            "lowest_efficiency": args.lowest_efficiency,
            "highest_wasted_bytes": args.highest_wasted_bytes,
            "highest_user_wasted_percent": args.highest_user_wasted_percent,
            "ignore": args.ignore,
            "min_wasted_bytes": args.min_wasted_bytes,
        },
    )
    with open_from_args(args, args.ref) as image:
        return evaluate_ci(image, rules), image.reference, config


def _number(value: float | None) -> float | None:
    # JSON has no NaN or infinity; dive's user-wasted ratio is NaN for a
    # one-layer image.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def result_json(
    result: CIResult, reference: str, *, rules_file: str | None = None
) -> dict[str, Any]:
    """Return the ``ci --json`` document for ``result``.

    ``rules_file`` is the ``.dive-ci`` file the rules were read from, None
    when dive's defaults were the starting point.
    """
    metrics = result.metrics
    files = metrics.inefficiencies
    return {
        "reference": reference,
        "rules_file": rules_file,
        "passed": result.passed,
        "rules": [
            {
                "name": rule.name,
                "status": rule.status,
                "value": _number(rule.value),
                "threshold": _number(rule.threshold),
                "message": rule.message,
            }
            for rule in result.rules
        ],
        "efficiency": metrics.efficiency,
        "wasted_bytes": metrics.inefficient_bytes,
        "user_wasted_percent": _number(metrics.user_wasted_percent),
        "size_bytes": metrics.size_bytes,
        "user_size_bytes": metrics.user_size_bytes,
        "ignore": list(result.settings.ignore),
        "min_wasted_bytes": result.settings.min_wasted_bytes,
        "dive": {
            "efficiency": result.dive.efficiency,
            "wasted_bytes": result.dive.inefficient_bytes,
            "user_wasted_percent": _number(result.dive.user_wasted_percent),
        },
        "inefficient_files": [
            {"path": path, "count": int(count), "wasted_bytes": int(size)}
            for path, count, size in files.itertuples(index=False, name=None)
        ],
    }


def print_result(
    result: CIResult,
    reference: str,
    console: Console,
    *,
    rules_file: str | None = None,
) -> None:
    """Print ``result`` as readable text.

    ``rules_file`` is the ``.dive-ci`` file the rules were read from, None
    when dive's defaults were the starting point.
    """
    console.print(plain(reference, style="bold"))
    console.print(plain(_rules_line(rules_file)), soft_wrap=True)
    _print_figures(result, console)
    if len(result.metrics.inefficiencies):
        console.print(_files_table(result))
    else:
        console.print("  no path is stored in more than one layer")
    for rule in result.rules:
        style = _STATUS_STYLE[rule.status]
        word = _STATUS_WORD[rule.status]
        console.print(
            Text.assemble("  ", (word, style), f"  {rule.name}: ", plain(rule.message))
        )
    console.print(_summary(result))


def _print_figures(result: CIResult, console: Console) -> None:
    metrics = result.metrics
    wasted = metrics.inefficient_bytes
    console.print(f"  efficiency          {metrics.efficiency:.4%}")
    console.print(
        f"  wasted bytes        {counted(wasted, 'byte')} ({human_bytes(wasted)})"
    )
    console.print(f"  user wasted         {percent(metrics.user_wasted_percent, 4)}")
    if result.settings.ignore:
        dive_wasted = counted(result.dive.inefficient_bytes, "byte")
        line = (
            f"  ignoring            {', '.join(result.settings.ignore)} "
            f"(dive alone: {dive_wasted} wasted)"
        )
        console.print(plain(line))


def _rules_line(rules_file: str | None) -> str:
    # dive 0.13.1 (cmd/ci.go) also prints the CI config file it read, or that
    # it used its defaults.
    source = rules_file
    if source is None:
        source = f"./{DEFAULT_CONFIG} not found, dive's defaults used"
    return f"  rules file          {source}"


def _files_table(result: CIResult) -> Table:
    files = result.metrics.inefficiencies
    shown = min(TOP_FILES, len(files))
    table = Table(
        title=f"inefficient files ({shown} of {len(files)})", title_justify="left"
    )
    table.add_column("count", justify="right")
    table.add_column("wasted", justify="right")
    # Folding keeps a long path whole, where an ellipsis would cut its file name.
    table.add_column("path", overflow="fold")
    for path, count, size in files.head(TOP_FILES).itertuples(index=False, name=None):
        table.add_row(str(count), human_bytes(size), plain(root_path(path)))
    return table


def _summary(result: CIResult) -> str:
    counts = {status: 0 for status in _STATUS_WORD}
    for rule in result.rules:
        counts[rule.status] += 1
    verdict = "[green]PASS[/green]" if result.passed else "[bold red]FAIL[/bold red]"
    return (
        f"Result: {verdict} ({counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['skipped']} skipped)"
    )
