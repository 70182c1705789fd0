"""The ``layerlab squash`` subcommand."""

from __future__ import annotations

import argparse

from rich.console import Console

from ._format import human_bytes


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
        metavar="N",
        help="last layer to squash (default: the top layer)",
    )
    parser.add_argument(
        "--history-count",
        action="store_true",
        help="count --from in history entries, empty ones included, as "
        "docker-squash's --from-layer does",
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
    from ._squash import history_to_layer, squash
    from .cli import RichProgress, open_from_args, stderr_console

    image = open_from_args(args, args.ref)
    with image:
        first = args.first
        if args.history_count and first is not None:
            first = history_to_layer(image, int(first))
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
    console = Console()
    console.print(
        f"squashed layers {result.first}-{result.last}: {result.layers_before} "
        f"layers -> {result.layers_after}, content "
        f"{human_bytes(result.content_bytes_before)} -> "
        f"{human_bytes(result.content_bytes_after)} "
        f"(saved {human_bytes(result.saved_bytes)}, predicted "
        f"{human_bytes(result.predicted_bytes)})",
        highlight=False,
    )
    console.print(f"wrote {result.output}", markup=False, highlight=False)
    if result.loaded_tag:
        console.print(f"loaded as {result.loaded_tag}", markup=False, highlight=False)
    return 0
