"""Build the node_like benchmark image and save it in three archive formats.

Usage: python benchmarks/node_like/build.py OUTPUT_DIR [--tag TAG] [--no-cache]

Writes into OUTPUT_DIR:

- ``node-like.docker.tar``: ``docker save`` output (uncompressed layers),
- ``node-like.oci-gzip.tar`` and ``node-like.oci-zstd.tar``: OCI archives
  with gzip and zstd layers, converted from the first one by skopeo,
- ``build.json``: the image id, the build's steps and totals, and the size of
  each archive and the seconds it took to write.

The ``node:22`` base is made locally when it cannot be pulled (see
``layerlab._bases``). Needs a Docker Engine and skopeo.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from layerlab._bases import ensure_base
from layerlab._build import build
from layerlab._daemon import connect

CONTEXT_DIR = Path(__file__).resolve().parent
DEFAULT_TAG = "layerlab-bench/node-like:latest"
ARCHIVE_STEM = "node-like"


def build_and_save(
    output_dir: str | os.PathLike[str],
    *,
    tag: str = DEFAULT_TAG,
    no_cache: bool = False,
) -> dict:
    """Build the image, write its archives into ``output_dir``, return the record."""
    if shutil.which("skopeo") is None:
        raise SystemExit("skopeo is not installed (Debian: apt-get install skopeo)")
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)

    base_id = ensure_base("node:22")
    result = build(CONTEXT_DIR, tag=tag, no_cache=no_cache)
    docker_archive = output / f"{ARCHIVE_STEM}.docker.tar"
    archives = {"docker-archive": _save(tag, docker_archive)}
    for compression in ("gzip", "zstd"):
        target = output / f"{ARCHIVE_STEM}.oci-{compression}.tar"
        archives[f"oci-archive-{compression}"] = _convert(
            docker_archive, target, compression
        )

    record = {
        "tag": tag,
        "image_id": result.image_id,
        "base_image_id": base_id,
        "totals": result.totals,
        "steps": json.loads(
            result.steps.drop(columns=["output"]).to_json(orient="records")
        ),
        "archives": archives,
    }
    (output / "build.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def _save(tag: str, path: Path) -> dict:
    started = time.monotonic()
    client = connect()
    try:
        with open(path, "wb") as file:
            file.writelines(client.api.get_image(tag))
    finally:
        client.close()
    return _archive_record(path, started)


def _convert(source: Path, target: Path, compression: str) -> dict:
    started = time.monotonic()
    target.unlink(missing_ok=True)
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--quiet",
            f"--dest-compress-format={compression}",
            f"docker-archive:{source}",
            f"oci-archive:{target}",
        ],
        check=True,
    )
    return _archive_record(target, started)


def _archive_record(path: Path, started: float) -> dict:
    return {
        "file": path.name,
        "bytes": path.stat().st_size,
        "seconds": round(time.monotonic() - started, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dir", help="directory for the archives and build.json")
    parser.add_argument("--tag", default=DEFAULT_TAG, help="tag of the built image")
    parser.add_argument(
        "--no-cache", action="store_true", help="build without the build cache"
    )
    arguments = parser.parse_args(argv)

    record = build_and_save(
        arguments.output_dir, tag=arguments.tag, no_cache=arguments.no_cache
    )
    totals = record["totals"]
    print(
        f"built {record['tag']} in {totals['seconds']:.1f} s "
        f"({totals['cached_steps']} of {totals['steps']} steps cached)"
    )
    for name, archive in record["archives"].items():
        print(
            f"{name}: {archive['file']} {archive['bytes'] / 1e6:.1f} MB "
            f"in {archive['seconds']:.1f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
