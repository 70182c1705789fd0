"""Every source gives the same tables, and they match what the engine shows.

Each test image is read four ways: from the engine (``docker-daemon:``), from
its ``docker save`` archive, and from OCI archives that skopeo wrote with
gzip and with zstd layers. The final filesystem is checked path by path
against ``docker export`` of a container, and sizes against what Python's
tarfile reads from the archives.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest
from engine import (
    FILESYSTEM_COLUMNS,
    archive_layers,
    comparable_filesystem,
    docker_archive_config,
    engine_filesystem,
    expected_answers,
    export_hardlink_groups,
    image_names,
    oci_archive_manifest,
)

pytestmark = pytest.mark.engine

NAMES = image_names()
SOURCES = ("engine", "docker-archive", "oci-gzip", "oci-zstd")
EXPECTED_COMPRESSION = {
    "engine": "none",
    "docker-archive": "none",
    "oci-gzip": "gzip",
    "oci-zstd": "zstd",
}
HAND_WORKED = [name for name in NAMES if expected_answers(name) is not None]

# Columns that describe the stored blob, which differs from source to source.
BLOB_COLUMNS = [
    "digest",
    "media_type",
    "compression",
    "compressed_size",
    "cumulative_compressed_size",
]


@pytest.fixture(scope="module")
def exported(test_image: Any) -> Any:
    """``engine_filesystem`` of a test image, computed once per module."""
    cache: dict[str, pd.DataFrame] = {}

    def export(name: str) -> pd.DataFrame:
        if name not in cache:
            cache[name] = engine_filesystem(test_image(name).tag)
        return cache[name]

    return export


def test_at_least_ten_images() -> None:
    assert len(NAMES) >= 10


# The same tables from every source


@pytest.mark.parametrize("source", ["engine", "oci-gzip", "oci-zstd"])
@pytest.mark.parametrize("name", NAMES)
def test_tables_equal_across_sources(opened_image: Any, name: str, source: str) -> None:
    reference = opened_image(name, "docker-archive")
    image = opened_image(name, source)

    pd.testing.assert_frame_equal(
        image.layers.drop(columns=BLOB_COLUMNS),
        reference.layers.drop(columns=BLOB_COLUMNS),
        obj="layers",
    )
    for table in ("files", "filesystem", "waste", "history"):
        pd.testing.assert_frame_equal(
            getattr(image, table), getattr(reference, table), obj=table
        )


@pytest.mark.parametrize("name", NAMES)
def test_cached_read_equals_fresh_read(
    opened_image: Any, test_image: Any, name: str
) -> None:
    import layerlab

    fresh = opened_image(name, "docker-archive")
    reference = test_image(name).references["docker-archive"]
    for attempt in ("stores the cache", "reads the cache"):
        with layerlab.open_image(reference, cache=True) as image:
            for table in ("layers", "files", "filesystem", "waste"):
                pd.testing.assert_frame_equal(
                    getattr(image, table),
                    getattr(fresh, table),
                    obj=f"{table} when the read {attempt}",
                )


# Sizes that add up


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("name", NAMES)
def test_layer_sizes_add_up(
    opened_image: Any, test_image: Any, name: str, source: str
) -> None:
    image = opened_image(name, source)
    layers = image.layers
    built = test_image(name)
    from_tarfile = archive_layers(built.docker_archive)

    assert len(layers) == len(from_tarfile)
    assert list(layers["layer"]) == list(range(len(layers)))
    assert list(layers["cumulative_size"]) == list(layers["content_size"].cumsum())
    assert list(layers["cumulative_compressed_size"]) == list(
        layers["compressed_size"].cumsum()
    )
    # The docker archive stores each layer uncompressed, so its member size
    # is the uncompressed size in every source.
    assert list(layers["uncompressed_size"]) == [
        layer["blob_size"] for layer in from_tarfile
    ]
    assert list(layers["content_size"]) == [
        layer["header_bytes"] for layer in from_tarfile
    ]
    assert set(layers["compression"]) == {EXPECTED_COMPRESSION[source]}


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("name", NAMES)
def test_compressed_sizes_equal_blob_sizes(
    opened_image: Any, test_image: Any, name: str, source: str
) -> None:
    image = opened_image(name, source)
    built = test_image(name)
    if source.startswith("oci"):
        archive = built.oci_gzip if source == "oci-gzip" else built.oci_zstd
        descriptors = oci_archive_manifest(archive)["layers"]
        blob_sizes = [int(item["size"]) for item in descriptors]
        assert list(image.layers["digest"]) == [item["digest"] for item in descriptors]
    else:
        blob_sizes = [
            layer["blob_size"] for layer in archive_layers(built.docker_archive)
        ]

    assert list(image.layers["compressed_size"]) == blob_sizes
    for index, size in enumerate(blob_sizes):
        assert image.layer_descriptor(index)["size"] == size


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("name", NAMES)
def test_diff_ids_equal_saved_config(
    opened_image: Any, test_image: Any, name: str, source: str
) -> None:
    image = opened_image(name, source)
    config = docker_archive_config(test_image(name).docker_archive)
    assert list(image.layers["diff_id"]) == config["rootfs"]["diff_ids"]


# The final filesystem against docker export


def _differences(actual: pd.DataFrame, expected: pd.DataFrame) -> list[str]:
    found = []
    for path in actual.index.intersection(expected.index):
        for column in FILESYSTEM_COLUMNS[1:]:
            mine, theirs = actual.at[path, column], expected.at[path, column]
            if mine != theirs:
                found.append(f"{path}: {column} is {mine!r}, engine has {theirs!r}")
    return found


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("name", NAMES)
def test_filesystem_equals_engine_export(
    opened_image: Any, exported: Any, name: str, source: str
) -> None:
    actual = comparable_filesystem(opened_image(name, source).filesystem)
    expected = comparable_filesystem(exported(name))

    missing = sorted(set(expected.index) - set(actual.index))
    extra = sorted(set(actual.index) - set(expected.index))
    assert missing == [], "paths the engine shows but layerlab does not"
    assert extra == [], "paths layerlab shows but the engine does not"
    assert _differences(actual, expected) == []


def layerlab_hardlink_groups(filesystem: pd.DataFrame) -> set[frozenset[str]]:
    """Return the sets of visible paths that share content through hardlinks.

    A hardlink joins the group of its target only while the target's visible
    version is no newer than the link. A newer version is another inode,
    because the engine copied it up and so broke it off the group.
    """
    visible_layer = dict(zip(filesystem["path"], filesystem["layer"]))
    parent: dict[Any, Any] = {}

    def root(node: Any) -> Any:
        while parent.setdefault(node, node) != node:
            node = parent[node]
        return node

    links = filesystem[filesystem["kind"] == "hardlink"]
    for path, target, layer in zip(links["path"], links["link_target"], links["layer"]):
        if visible_layer.get(target, math.inf) <= layer:
            node: Any = target
        else:
            node = ("gone", target, int(layer))
        parent[root(path)] = root(node)

    groups: dict[Any, set[str]] = {}
    for node in list(parent):
        if isinstance(node, str):
            groups.setdefault(root(node), set()).add(node)
    return {frozenset(group) for group in groups.values() if len(group) > 1}


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("name", NAMES)
def test_hardlink_groups_equal_engine_export(
    opened_image: Any, exported: Any, name: str, source: str
) -> None:
    filesystem = opened_image(name, source).filesystem
    assert layerlab_hardlink_groups(filesystem) == export_hardlink_groups(
        exported(name)
    )


# Expected values worked out by hand (tests/images/*/expected.json)


def _check_paths(filesystem: pd.DataFrame, answers: dict[str, Any]) -> None:
    rows = filesystem.set_index(filesystem["path"].astype(str))
    for path, fields in answers["filesystem"].items():
        assert path in rows.index, f"{path} missing from the filesystem"
        for field, value in fields.items():
            if field not in rows.columns:
                continue  # "layer" is checked only where the table has it
            expected = int(value, 8) if field == "mode" else value
            assert rows.at[path, field] == expected, f"{path}: {field}"
    for path in answers["absent"]:
        assert path not in rows.index, f"{path} should be hidden"


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("name", HAND_WORKED)
def test_hand_worked_answers(opened_image: Any, name: str, source: str) -> None:
    answers = expected_answers(name)
    assert answers is not None
    image = opened_image(name, source)

    assert len(image.layers) == answers["layers"]
    assert list(image.layers["instruction"].iloc[1:]) == answers["instructions"]
    _check_paths(image.filesystem, answers)

    waste = [
        (row.path, int(row.layer), int(row.size), int(row.hidden_by), str(row.reason))
        for row in image.waste.itertuples()
    ]
    expected = answers["waste"]
    assert sorted(item[:4] for item in waste) == sorted(
        (item["path"], item["layer"], item["size"], item["hidden_by"])
        for item in expected
    )
    reasons = {(item["path"], item["layer"]): item["reasons"] for item in expected}
    for path, layer, _size, _hidden_by, reason in waste:
        assert reason in reasons[(path, layer)], f"{path} in layer {layer}"
    assert int(image.waste["size"].sum()) == answers["reclaimable_bytes"]


@pytest.mark.parametrize("name", HAND_WORKED)
def test_hand_worked_answers_match_engine(exported: Any, name: str) -> None:
    answers = expected_answers(name)
    assert answers is not None
    export = exported(name)
    # The engine shows a hardlink's group by tar order, not by layer, so
    # compare those paths as the files they are.
    for fields in answers["filesystem"].values():
        if fields.get("kind") == "hardlink":
            fields["kind"] = "file"
            fields.pop("link_target", None)
    table = export.assign(kind=export["kind"].replace({"hardlink": "file"}))
    _check_paths(table, answers)
