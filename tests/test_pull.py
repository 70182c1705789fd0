"""Pull-time estimates, with every expected time worked out by hand."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
from pathlib import Path
from typing import Any

import pytest
from handmade import Layer, directory, file, write_oci_archive

import layerlab
from layerlab._pull import (
    chain_ids,
    layer_keys,
    pull_chart,
    pull_cost,
    pull_schedule,
    pull_seconds,
    schedule_pull,
)


def _ends(schedule: Any) -> list[float]:
    return [float(value) for value in schedule["end"]]


# The download model


def test_fair_share_two_layers() -> None:
    # 100 and 300 bytes over 100 B/s, each download may use the whole link:
    # both run at 50 B/s until the first ends at 2 s, then the second has
    # 200 bytes left at 100 B/s, ending at 4 s.
    schedule = schedule_pull([100, 300], bandwidth=100, parallel=2, per_connection=100)
    assert _ends(schedule) == pytest.approx([2.0, 4.0])
    assert list(schedule["start"]) == [0.0, 0.0]


def test_default_cap_is_share_of_slots() -> None:
    # The default cap is 100 / 2 = 50 B/s per download: the first ends at
    # 2 s, the second has 200 bytes left at 50 B/s, ending at 6 s.
    schedule = schedule_pull([100, 300], bandwidth=100, parallel=2)
    assert _ends(schedule) == pytest.approx([2.0, 6.0])
    # One layer of the same 400 bytes gets one connection: 8 s.
    assert pull_seconds([(400, 0)], bandwidth=100, parallel=2)[0] == pytest.approx(8.0)


def test_three_slots_four_layers() -> None:
    # 300 B/s, three slots, no cap. 0-1 s: layers 0, 1, 2 at 100 B/s, layer 1
    # (100 bytes) ends. 1-2 s: layers 0, 2, 3 at 100 B/s, layer 2 ends.
    # Layer 0 has 100 bytes left and layer 3 500, at 150 B/s each, so layer
    # 0 ends at 2 + 2/3 s. Layer 3 then has 400 bytes at 300 B/s: 4 s.
    schedule = schedule_pull([300, 100, 200, 600], bandwidth=300, per_connection=300)
    assert _ends(schedule) == pytest.approx([8 / 3, 1.0, 2.0, 4.0])
    assert list(schedule["start"]) == pytest.approx([0.0, 0.0, 0.0, 1.0])


def test_one_slot_is_sequential() -> None:
    schedule = schedule_pull([100, 200, 50], bandwidth=100, parallel=1)
    assert _ends(schedule) == pytest.approx([1.0, 3.0, 3.5])
    assert list(schedule["start"]) == pytest.approx([0.0, 1.0, 3.0])


def test_latency_holds_a_slot() -> None:
    # One slot: each blob waits 0.5 s, then takes 1 s at 100 B/s.
    schedule = schedule_pull(
        [100, 100], bandwidth=100, parallel=1, per_connection=100, latency=0.5
    )
    assert list(schedule["start"]) == pytest.approx([0.0, 1.5])
    assert list(schedule["transfer_start"]) == pytest.approx([0.5, 2.0])
    assert _ends(schedule) == pytest.approx([1.5, 3.0])
    # Two slots: both wait 0.5 s, then share the link for 2 s.
    parallel = schedule_pull(
        [100, 100], bandwidth=100, parallel=2, per_connection=100, latency=0.5
    )
    assert _ends(parallel) == pytest.approx([2.5, 2.5])


def test_latency_of_one_overlaps_transfer_of_another() -> None:
    # Three slots, 0.5 s latency, 100 B/s. Both blobs flow from 0.5 s at
    # 50 B/s, and blob 0 (50 bytes) ends at 1.5 s. Blob 1 then runs alone at
    # 100 B/s with 50 bytes left: 2.0 s.
    schedule = schedule_pull([50, 100], bandwidth=100, per_connection=100, latency=0.5)
    assert _ends(schedule) == pytest.approx([1.5, 2.0])


def test_extraction_in_order() -> None:
    # Downloads end at 2 s and 6 s with the default cap of 50 B/s. Extraction
    # at 100 B/s runs 2-4 s for layer 0 and 6-9 s for layer 1.
    schedule = schedule_pull(
        [100, 300],
        uncompressed_sizes=[200, 300],
        bandwidth=100,
        parallel=2,
        extract_rate=100,
    )
    assert list(schedule["extract_start"]) == pytest.approx([2.0, 6.0])
    assert list(schedule["extract_end"]) == pytest.approx([4.0, 9.0])
    download, total = pull_seconds(
        [(100, 200), (300, 300)], bandwidth=100, parallel=2, extract_rate=100
    )
    assert (download, total) == pytest.approx((6.0, 9.0))


def test_extraction_waits_for_lower_layer() -> None:
    # Both blobs arrive at 1 s; layer 1 waits for layer 0's 10 s extraction.
    schedule = schedule_pull(
        [100, 100],
        uncompressed_sizes=[1000, 100],
        bandwidth=200,
        per_connection=100,
        extract_rate=100,
    )
    assert _ends(schedule) == pytest.approx([1.0, 1.0])
    assert list(schedule["extract_start"]) == pytest.approx([1.0, 11.0])
    assert list(schedule["extract_end"]) == pytest.approx([11.0, 12.0])


def test_cached_layers_skip_download_and_extraction() -> None:
    schedule = schedule_pull(
        [500, 100],
        bandwidth=100,
        per_connection=100,
        extract_rate=100,
        cached=[True, False],
    )
    assert math.isnan(schedule.loc[0, "end"])
    assert math.isnan(schedule.loc[0, "extract_end"])
    assert schedule.loc[1, "end"] == pytest.approx(1.0)
    assert schedule.loc[1, "extract_end"] == pytest.approx(2.0)


def test_repeated_blob_downloads_once() -> None:
    # Blobs a (100), b (50), a again. 150 B/s: a and b at 75 B/s, b ends at
    # 2/3 s, a has 50 bytes left at 150 B/s: 1 s. The second a is not
    # fetched but extracted again after b: extraction at 100 B/s runs
    # 1-2 s, 2-2.5 s, 2.5-3.5 s.
    schedule = schedule_pull(
        [100, 50, 100],
        bandwidth=150,
        per_connection=150,
        extract_rate=100,
        blob_keys=["a", "b", "a"],
    )
    assert _ends(schedule)[:2] == pytest.approx([1.0, 2 / 3])
    assert math.isnan(schedule.loc[2, "end"])
    assert list(schedule["extract_end"]) == pytest.approx([2.0, 2.5, 3.5])


def test_cached_first_copy_refetches_repeat() -> None:
    # Docker Engine keeps no blobs, only layers: a repeated blob whose first
    # copy is cached below is downloaded again for its new chain.
    schedule = schedule_pull(
        [100, 50, 100],
        bandwidth=100,
        per_connection=100,
        blob_keys=["a", "b", "a"],
        cached=[True, False, False],
    )
    assert math.isnan(schedule.loc[0, "end"])
    assert _ends(schedule)[1:] == pytest.approx([1.0, 1.5])


def test_empty_and_zero_sized() -> None:
    assert pull_seconds([], bandwidth=10) == (0.0, 0.0)
    schedule = schedule_pull([0, 10], bandwidth=10, per_connection=10)
    assert _ends(schedule) == pytest.approx([0.0, 1.0])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"bandwidth": 0}, "bandwidth"),
        ({"bandwidth": float("inf")}, "bandwidth"),
        ({"bandwidth": 10, "parallel": 0}, "parallel"),
        ({"bandwidth": 10, "per_connection": -1}, "per_connection"),
        ({"bandwidth": 10, "latency": -1}, "latency"),
        ({"bandwidth": 10, "extract_rate": 0}, "extract_rate"),
        ({"bandwidth": 10, "cached": [True]}, "cached has 1 items"),
    ],
)
def test_invalid_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(layerlab.OptionError, match=message):
        schedule_pull([1, 2], **options)


# Images


def test_chain_ids_by_formula() -> None:
    first = "sha256:" + "1" * 64
    second = "sha256:" + "2" * 64
    expected = "sha256:" + hashlib.sha256(f"{first} {second}".encode()).hexdigest()
    assert chain_ids([first, second]) == [first, expected]
    assert chain_ids([]) == []


BASE = [
    Layer([directory("usr"), file("usr/lib.so", b"L" * 4000)], compression="gzip"),
    Layer([file("usr/tool", b"T" * 2000)], compression="gzip"),
]
APP = Layer([directory("app"), file("app/main", b"A" * 1000)], compression="gzip")


def _images(tmp_path: Path) -> dict[str, Any]:
    paths = {
        "base": write_oci_archive(tmp_path / "base.tar", BASE),
        "layered": write_oci_archive(tmp_path / "layered.tar", [*BASE, APP]),
        # The app layer on another base: same diff_id, another chain.
        "moved": write_oci_archive(tmp_path / "moved.tar", [BASE[1], APP]),
        "squashed": write_oci_archive(
            tmp_path / "squashed.tar",
            [Layer([*BASE[0].entries, *BASE[1].entries, *APP.entries])],
        ),
    }
    return {
        name: layerlab.open_image(f"oci-archive:{path}", cache=False)
        for name, path in paths.items()
    }


def test_pull_cost_with_base_cached(tmp_path: Path) -> None:
    images = _images(tmp_path)
    variants = [images["layered"], images["squashed"]]
    costs = pull_cost(
        variants,
        labels=["layered", "squashed"],
        bandwidth=1000,
        per_connection=1000,
        cached=images["base"],
    )
    table = costs.set_index(["image", "state"])
    layered = images["layered"].layers["compressed_size"].tolist()
    squashed = int(images["squashed"].layers.loc[0, "compressed_size"])

    assert table.loc[("layered", "cold"), "layers"] == 3
    assert table.loc[("layered", "cold"), "bytes"] == sum(layered)
    assert table.loc[("layered", "cold"), "download_seconds"] == pytest.approx(
        sum(layered) / 1000
    )
    assert table.loc[("layered", "cached"), "layers"] == 1
    assert table.loc[("layered", "cached"), "bytes"] == layered[2]
    assert table.loc[("layered", "cached"), "total_seconds"] == pytest.approx(
        layered[2] / 1000
    )
    # The squashed image shares no layer with the base.
    assert table.loc[("squashed", "cached"), "bytes"] == squashed
    assert table.loc[("squashed", "cold"), "bytes"] == squashed
    assert list(costs.columns) == [
        "image",
        "state",
        "layers",
        "bytes",
        "download_seconds",
        "extract_seconds",
        "total_seconds",
    ]


def test_match_chain_against_diff_id(tmp_path: Path) -> None:
    images = _images(tmp_path)
    moved = images["moved"]
    # By chain: the moved image's layer 0 is the base's layer 1 on nothing,
    # a new chain, and so is the app layer above it.
    by_chain = pull_schedule(moved, bandwidth=1000, cached=images["layered"])
    assert list(by_chain["cached"]) == [False, False]
    by_diff_id = pull_schedule(
        moved, bandwidth=1000, cached=images["layered"], match="diff_id"
    )
    assert list(by_diff_id["cached"]) == [True, True]
    by_digest = pull_schedule(
        moved, bandwidth=1000, cached=images["layered"], match="digest"
    )
    assert list(by_digest["cached"]) == [True, True]
    with pytest.raises(layerlab.OptionError, match="invalid match"):
        layer_keys(moved, "name")


def test_pull_cost_labels_must_match(tmp_path: Path) -> None:
    images = _images(tmp_path)
    with pytest.raises(layerlab.OptionError, match="labels"):
        pull_cost([images["base"]], labels=["a", "b"], bandwidth=10)


def test_pull_chart_escapes_names(tmp_path: Path) -> None:
    images = _images(tmp_path)
    costs = pull_cost(
        [images["layered"], images["squashed"]],
        labels=["<b>layered</b>", "squashed"],
        bandwidth=1000,
        cached=images["base"],
    )
    figure = pull_chart(costs)
    assert [trace.name for trace in figure.data] == [
        "nothing cached",
        "cached layers present",
    ]
    assert list(figure.data[0].x) == ["&lt;b&gt;layered&lt;/b&gt;", "squashed"]
    assert list(figure.data[1].y) == list(
        costs.loc[costs["state"] == "cached", "total_seconds"]
    )


@pytest.mark.engine
def test_chain_ids_name_engine_layers(test_image: Any) -> None:
    # Docker Engine's layer store keeps one directory per chain ID under
    # image/<driver>/layerdb/sha256 in its root directory.
    info = subprocess.run(
        ["docker", "info", "--format", "{{json .}}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    details = json.loads(info.stdout)
    layerdb = Path(details["DockerRootDir"]) / "image" / details["Driver"] / "layerdb"
    if not layerdb.is_dir():
        pytest.skip(f"the engine's layer store {layerdb} is not readable here")
    built = test_image("overwrite")
    image = layerlab.open_image(f"docker-archive:{built.docker_archive}", cache=False)
    for chain_id in layer_keys(image, "chain_id"):
        assert (layerdb / "sha256" / chain_id.removeprefix("sha256:")).is_dir()
