"""layerlab's squash against the real engine and docker-squash.

For every test image and several ranges, the squashed image must load into
the engine, show the original final filesystem through ``docker export``,
run a command, save exactly the bytes the tables predicted, and be no larger
than docker-squash's result for the same range.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from engine import (
    archive_layers,
    comparable_filesystem,
    engine_filesystem,
    image_names,
    squash_all_layers,
)
from test_engine_squash_peer import DOCKER_SQUASH_BUGS

import layerlab
from layerlab._squash import predict_squash, squash

pytestmark = pytest.mark.engine

RANGES = ("all", "last-two", "middle")


def _file_bytes(archive: Path) -> int:
    return sum(layer["file_bytes"] for layer in archive_layers(archive))


def _range(image: layerlab.Image, name: str) -> tuple[int, int]:
    count = len(image.layers)
    if name == "all":
        return 0, count - 1
    if name == "last-two":
        return max(count - 2, 0), count - 1
    # A range with layers left on both sides, or a single layer when the
    # image is too short for that: squashing one layer rewrites it alone.
    if count >= 3:
        return 1, count - 2
    return count - 1, count - 1


@pytest.mark.parametrize("range_name", RANGES)
@pytest.mark.parametrize("name", image_names())
def test_squash_keeps_engine_filesystem(
    test_image: Any, tmp_path: Path, docker_client: Any, name: str, range_name: str
) -> None:
    built = test_image(name)
    image = layerlab.open_image(f"docker-archive:{built.docker_archive}")
    chosen = _range(image, range_name)
    tag = f"layerlab-test/squashed-{name}:{range_name}"
    result = squash(
        image,
        output=tmp_path / "squashed.tar",
        first=chosen[0],
        last=chosen[1],
        format="docker",
        tag=tag,
        load=True,
    )
    try:
        expected = comparable_filesystem(engine_filesystem(built.tag))
        found = comparable_filesystem(engine_filesystem(tag))
        pd.testing.assert_frame_equal(found, expected)

        assert result.layers_after == result.layers_before - (
            result.last - result.first
        )
        assert result.saved_bytes == result.predicted_bytes
        assert result.saved_bytes == predict_squash(image, chosen[0], chosen[1])
        before = _file_bytes(built.docker_archive)
        assert before - _file_bytes(Path(result.output)) == result.saved_bytes

        ran = subprocess.run(
            ["docker", "run", "--rm", "--network", "host", tag, "sh", "-c", "echo ok"],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.strip() == "ok"
    finally:
        docker_client.images.remove(tag, force=True)


@pytest.mark.parametrize("name", image_names())
def test_squash_all_no_larger_than_docker_squash(
    test_image: Any, tmp_path: Path, name: str
) -> None:
    built = test_image(name)
    image = layerlab.open_image(f"docker-archive:{built.docker_archive}")
    ours = squash(image, output=tmp_path / "ours.tar", format="docker")
    theirs = squash_all_layers(built.tag, tmp_path / "theirs.tar")
    ours_bytes = _file_bytes(Path(ours.output))
    theirs_bytes = _file_bytes(theirs)
    ours_layers = archive_layers(Path(ours.output))
    theirs_layers = archive_layers(theirs)

    assert ours.saved_bytes == image.metrics.reclaimable_bytes
    assert ours_bytes == image.metrics.content_bytes - image.metrics.reclaimable_bytes
    if name in DOCKER_SQUASH_BUGS:
        # docker-squash 1.2.2 drops visible bytes or keeps hidden ones here.
        assert ours_bytes != theirs_bytes
    else:
        assert ours_bytes <= theirs_bytes
        assert sum(layer["blob_size"] for layer in ours_layers) <= sum(
            layer["blob_size"] for layer in theirs_layers
        )


def test_squash_oci_output_reads_back(test_image: Any, tmp_path: Path) -> None:
    built = test_image("overwrite")
    image = layerlab.open_image(f"oci-archive:{built.oci_zstd}")
    result = squash(image, output=tmp_path / "out.tar", compression="zstd", tag="v1")
    squashed = layerlab.open_image(f"oci-archive:{result.output}:v1")
    assert len(squashed.layers) == 1
    assert squashed.layers.loc[0, "compression"] == "zstd"
    pd.testing.assert_frame_equal(
        comparable_filesystem(squashed.filesystem),
        comparable_filesystem(image.filesystem),
    )
    history = squashed.config["history"]
    assert "layerlab squash" in history[-1]["comment"] or any(
        "layerlab squash" in entry.get("comment", "") for entry in history
    )
    assert [entry.get("empty_layer", False) for entry in history].count(False) == 1
