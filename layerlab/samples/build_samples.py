"""Rebuild the sample images bundled with layerlab.

Run ``python -m layerlab.samples.build_samples`` on a machine with a Docker
Engine, skopeo and Debian's busybox-static. The script

1. makes the base image ``layerlab-sample/busybox:base`` with ``docker import``
   from a root filesystem written with :mod:`tarfile` around
   ``/bin/busybox`` (no registry needed),
2. builds each sample from ``<name>/Dockerfile`` with the engine's builder,
3. makes ``squashed`` by squashing ``rm-later`` above its base layer,
4. saves each image with ``skopeo copy`` as an OCI archive ``<name>.tar``
   (skopeo gzip-compresses the layers) beside a ``<name>.json`` description.

The archives change on every rebuild because the builds write timestamps
and random data.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger("layerlab.samples")

SAMPLES_DIR = Path(__file__).resolve().parent
BASE_TAG = "layerlab-sample/busybox:base"
BUSYBOX = "/bin/busybox"

DESCRIPTIONS: dict[str, dict[str, str]] = {
    "rm-later": {
        "title": "Delete in a later RUN step",
        "description": "One RUN step makes about 1.4 MB of build files "
        "(1 MiB of random data and 40 text files) and a 64 kB result; the "
        "next RUN step deletes the build files. The deletion only adds "
        "whiteouts, so every byte still ships in the earlier layer.",
    },
    "combined-run": {
        "title": "Delete in the same RUN step",
        "description": "The same steps as rm-later, with the deletion at the "
        "end of the RUN step that made the build files. No layer stores "
        "them, so the image carries only the 64 kB result.",
    },
    "multistage": {
        "title": "Multistage build",
        "description": "A build stage makes the same files as rm-later; the "
        "runtime stage starts again from the base and copies only the 64 kB "
        "result, so the build files never reach the final image.",
    },
    "squashed": {
        "title": "rm-later, squashed",
        "description": "rm-later with every layer above the base image merged "
        "into one. The whiteouts and the files they hid cancel out, so the "
        "image is as small as combined-run, but it has lost its per-step "
        "layers and their history.",
    },
}


def main(argv: list[str] | None = None) -> int:
    """Rebuild the requested samples and write them into the output directory."""
    parser = argparse.ArgumentParser(
        prog="python -m layerlab.samples.build_samples", description=__doc__
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"samples to rebuild (default: all of {', '.join(DESCRIPTIONS)})",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=SAMPLES_DIR,
        help="directory for the archives and descriptions (default: the "
        "package's samples directory)",
    )
    parser.add_argument(
        "--busybox",
        default=BUSYBOX,
        help=f"statically linked busybox for the base image (default {BUSYBOX})",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    names = args.names or list(DESCRIPTIONS)
    unknown = sorted(set(names) - set(DESCRIPTIONS))
    if unknown:
        parser.error(
            f"unknown sample {', '.join(unknown)}; known: {list(DESCRIPTIONS)}"
        )
    if shutil.which("skopeo") is None:
        parser.error("skopeo not found; install it (Debian package skopeo)")
    if not os.access(args.busybox, os.X_OK):
        parser.error(
            f"{args.busybox} not found; install Debian's busybox-static or pass "
            "--busybox PATH"
        )

    import docker

    client = docker.from_env()
    make_base(client, busybox=args.busybox)
    args.output.mkdir(parents=True, exist_ok=True)
    for name in names:
        tag = build_sample(client, name)
        save_sample(name, tag, args.output, engine=client.version())
    check_samples(names, args.output)
    return 0


def make_base(client: Any, *, busybox: str) -> str:
    """Import a busybox root filesystem as ``BASE_TAG`` and return its id."""
    data = _busybox_rootfs(busybox)
    version = _package_version("busybox-static")
    changes = [
        'CMD ["sh"]',
        (
            "LABEL org.opencontainers.image.title=layerlab-sample-base "
            f'org.opencontainers.image.description="stand-in base image made '
            f'locally from Debian busybox-static {version}"'
        ),
    ]
    # Importing again would give a new image id (a new creation time) and
    # defeat the build cache, so an identical existing base is kept.
    diff_id = "sha256:" + hashlib.sha256(data).hexdigest()
    existing = _find_image(client, BASE_TAG)
    if existing is not None and existing.attrs["RootFS"]["Layers"] == [diff_id]:
        logger.info("kept %s (%s)", BASE_TAG, existing.short_id)
        return str(existing.id)

    repository, tag = BASE_TAG.split(":")
    client.api.import_image_from_data(
        data, repository=repository, tag=tag, changes=changes
    )
    image = client.images.get(BASE_TAG)
    logger.info("made %s (%s, %d bytes)", BASE_TAG, image.short_id, len(data))
    return str(image.id)


def _find_image(client: Any, tag: str) -> Any:
    import docker.errors

    try:
        return client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None


def _busybox_rootfs(busybox: str) -> bytes:
    """Write a tar of a minimal root filesystem: busybox and its applet links."""
    applets = subprocess.run(
        [busybox, "--list-full"], check=True, capture_output=True, text=True
    ).stdout.split()
    directories = {"etc", "root", "tmp", "bin"}
    for applet in applets:
        parent = os.path.dirname(applet)
        while parent:
            directories.add(parent)
            parent = os.path.dirname(parent)

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in sorted(directories):
            mode = 0o1777 if directory == "tmp" else 0o755
            tar.addfile(_member(directory, tarfile.DIRTYPE, mode))
        tar.add(busybox, arcname="bin/busybox", filter=_owned_by_root)
        for applet in sorted(applets):
            if applet != "bin/busybox":
                link = _member(applet, tarfile.SYMTYPE, 0o777)
                link.linkname = "/bin/busybox"
                tar.addfile(link)
        for path, text in (
            ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
            ("etc/group", "root:x:0:\n"),
        ):
            content = text.encode()
            member = _member(path, tarfile.REGTYPE, 0o644)
            member.size = len(content)
            tar.addfile(member, io.BytesIO(content))
    return buffer.getvalue()


def _member(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type = kind
    member.mode = mode
    member.mtime = 0
    return member


def _owned_by_root(member: tarfile.TarInfo) -> tarfile.TarInfo:
    member.uid = member.gid = 0
    member.uname = member.gname = "root"
    member.mtime = 0
    return member


def build_sample(client: Any, name: str) -> str:
    """Build (or squash) sample ``name`` in the engine and return its tag."""
    tag = f"layerlab-sample/{name}:latest"
    if name == "squashed":
        source = build_sample(client, "rm-later")
        squash(source, tag, base=BASE_TAG)
        return tag
    # The engine's default builder (the classic one on Docker 20.10) writes
    # the history that layerlab matches to layers.
    client.images.build(
        path=str(SAMPLES_DIR / name),
        tag=tag,
        network_mode="host",
        rm=True,
        forcerm=True,
        pull=False,
    )
    logger.info("built %s", tag)
    return tag


def squash_with_docker_squash(source: str, target: str, *, base: str) -> None:
    """Squash the layers of ``source`` above ``base`` into ``target`` (loaded)."""
    subprocess.run(
        [_docker_squash(), "--from-layer", base, "--tag", target, source],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    logger.info("squashed %s above %s into %s with docker-squash", source, base, target)


def _docker_squash() -> str:
    # Installed beside this interpreter when it runs from a virtual environment
    # that is not activated.
    beside = Path(sys.executable).parent / "docker-squash"
    return (
        str(beside)
        if beside.exists()
        else shutil.which("docker-squash") or "docker-squash"
    )


# The squash step, kept in one name so that another implementation can take
# its place without touching the rest of the script.
squash: Callable[..., None] = squash_with_docker_squash


def save_sample(name: str, tag: str, output: Path, *, engine: dict[str, Any]) -> Path:
    """Save ``tag`` as ``output/<name>.tar`` (OCI archive) with its description."""
    archive = output / f"{name}.tar"
    with tempfile.TemporaryDirectory(dir=output) as scratch:
        partial = Path(scratch) / archive.name
        subprocess.run(
            [
                "skopeo",
                "copy",
                "--quiet",
                f"docker-daemon:{tag}",
                f"oci-archive:{partial}:{tag}",
            ],
            check=True,
        )
        os.replace(partial, archive)

    description = {
        "name": name,
        **DESCRIPTIONS[name],
        "dockerfile": f"{name}/Dockerfile",
        "tag": tag,
        "base": f"{BASE_TAG} (docker import of Debian busybox-static "
        f"{_package_version('busybox-static')})",
        "built_with": f"Docker Engine {engine.get('Version', '?')}",
        "saved_with": _first_line(["skopeo", "--version"]),
    }
    if name == "squashed":
        description["squashed_with"] = "docker-squash " + _first_line(
            [_docker_squash(), "--version"]
        )
    with open(output / f"{name}.json", "w", encoding="utf-8") as handle:
        json.dump(description, handle, indent=2)
        handle.write("\n")
    logger.info("saved %s (%d bytes)", archive, archive.stat().st_size)
    return archive


def check_samples(names: list[str], output: Path) -> None:
    """Open each saved archive with layerlab and log its sizes."""
    import layerlab

    for name in names:
        with layerlab.open_image(
            f"oci-archive:{output / name}.tar", cache=False
        ) as image:
            layers = image.layers
            logger.info(
                "%s: %d layers, %d content bytes, %d bytes not visible",
                name,
                len(layers),
                int(layers["content_size"].sum()),
                int(layers["hidden_bytes"].sum()),
            )


def _package_version(package: str) -> str:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", package],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or "(version unknown)"


def _first_line(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    return (result.stdout or result.stderr).strip().splitlines()[0]


if __name__ == "__main__":
    sys.exit(main())
