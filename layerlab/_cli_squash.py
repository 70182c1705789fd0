"""The ``layerlab squash`` subcommand."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from ._format import counted, human_bytes
from ._terminal import plain


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``squash`` subcommand."""
    from .cli import add_image_options

    parser = subparsers.add_parser(
        "squash",
        help="merge a range of layers into one and write a new image",
        description="Merge filesystem layers FROM to TO (inclusive) into one layer "
        "and write the new image. Layers are counted as filesystem layers, 0 being "
        "the bottom one, as 'layerlab analyze' numbers them; instructions without "
        "a layer (ENV, CMD, ...) do not count. No Docker Engine is needed unless "
        "--load is given.",
    )
    parser.add_argument("ref", metavar="REF", help="the image to squash")
    add_image_options(parser)
    parser.add_argument(
        "--from",
        dest="first",
        metavar="N|DIGEST",
        help="first layer to squash: an index (negative counts from the top) or a "
        "diff_id or digest prefix (default: 0, the bottom layer)",
    )
    parser.add_argument(
        "--to",
        dest="last",
        metavar="N|DIGEST",
        help="last layer to squash, given as --from is (default: the top layer)",
    )
    parser.add_argument(
        "--history-count",
        action="store_true",
        help="read --from N as docker-squash 1.2.2 reads --from-layer N: squash "
        "the last N history entries, empty ones (ENV, CMD, ...) included",
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT.tar",
        help="archive to write (replaced atomically)",
    )
    parser.add_argument(
        "--format",
        choices=("oci", "docker"),
        default="oci",
        help="oci-archive (default) or docker-archive; docker "
        "archives store layers uncompressed, as docker save does",
    )
    parser.add_argument(
        "--compress",
        choices=("gzip", "zstd", "none"),
        default="gzip",
        help="compression of the squashed layer in an OCI archive (default gzip)",
    )
    parser.add_argument(
        "--load",
        action="store_true",
        help="also load the result into the Docker Engine",
    )
    parser.add_argument("-t", "--tag", help="name for the new image")
    parser.add_argument(
        "-m", "--message", help="comment for the squashed step's history entry"
    )
    parser.set_defaults(func=_squash)


def _squash(args: argparse.Namespace) -> int:
    from ._squash import layer_for_history_count, squash
    from .cli import RichProgress, open_from_args, stderr_console

    image = open_from_args(args, args.ref)
    with image:
        first = args.first
        if args.history_count and first is not None:
            first = layer_for_history_count(image, _count(first))
        result = squash(
            image,
            output=args.output,
            first=first,
            last=args.last,
            format=args.format,
            compression=args.compress,
            tag=args.tag,
            message=args.message,
            load=args.load,
            progress=RichProgress(stderr_console()),
        )
    _print_result(result)
    return 0


def _count(value: str) -> int:
    from ._errors import OptionError

    try:
        return int(value)
    except ValueError:
        raise OptionError(
            f"--from {value!r} must be a number of history entries with --history-count"
        ) from None


def _print_result(result: Any) -> None:
    console = Console()
    console.print(
        f"squashed layers {result.first}-{result.last}: "
        f"{counted(result.layers_before, 'layer')} -> {result.layers_after}, "
        f"content {human_bytes(result.content_bytes_before)} -> "
        f"{human_bytes(result.content_bytes_after)} "
        f"(saved {human_bytes(result.saved_bytes)}, predicted "
        f"{human_bytes(result.predicted_bytes)})",
        highlight=False,
    )
    # The output path and the tag are the user's text, so rich must not read
    # markup or emoji codes in them.
    console.print(plain(f"wrote {result.output}"), soft_wrap=True)
    if result.loaded_tag:
        console.print(plain(f"loaded as {result.loaded_tag}"))
