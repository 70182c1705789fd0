"""The combined-RUN what-if against a real build of the combined Dockerfile."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from engine import comparable_filesystem

import layerlab
from layerlab._squash import simulate_combine

pytestmark = pytest.mark.engine

HERE = Path(__file__).parent / "images_combine"


def _build(dockerfile: str, tag: str, out: Path) -> Path:
    subprocess.run(
        [
            "docker",
            "build",
            "-q",
            "--network",
            "host",
            "-f",
            str(HERE / dockerfile),
            "-t",
            tag,
            str(HERE),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    archive = out / f"{dockerfile}.tar"
    subprocess.run(["docker", "save", "-o", str(archive), tag], check=True, timeout=300)
    return archive


def test_combine_prediction_matches_build(
    busybox_base: str, docker_client: Any, tmp_path: Path
) -> None:
    separate = layerlab.open_image(
        _build("separate.Dockerfile", "layerlab-test/combine:separate", tmp_path)
    )
    combined = layerlab.open_image(
        _build("combined.Dockerfile", "layerlab-test/combine:combined", tmp_path)
    )
    try:
        count = len(separate.layers)
        with simulate_combine(separate, count - 3, count - 1) as predicted:
            assert len(predicted.layers) == len(combined.layers)
            assert (
                predicted.layers["content_size"].sum()
                == combined.layers["content_size"].sum()
            )
            assert predicted.metrics.reclaimable_bytes == 0
            assert combined.metrics.reclaimable_bytes == 0
            # The deleted archive, plus version.txt (6 bytes) copied up by chmod.
            assert separate.metrics.reclaimable_bytes == 300000 + 6
            expected = comparable_filesystem(combined.filesystem)
            found = comparable_filesystem(predicted.filesystem)
            assert list(found.index) == list(expected.index)
            assert (found["size"] == expected["size"]).all()

            # Blob sizes: the combined build's layers are gzip-compressed the
            # same way for the comparison (docker save stores them raw).
            squashed_blob = int(predicted.layers["compressed_size"].iloc[-1])
            with simulate_combine(combined, count - 3, count - 3) as rewritten:
                built_blob = int(rewritten.layers["compressed_size"].iloc[-1])
            assert abs(squashed_blob - built_blob) <= 0.05 * built_blob
    finally:
        for tag in ("layerlab-test/combine:separate", "layerlab-test/combine:combined"):
            docker_client.images.remove(tag, force=True)
