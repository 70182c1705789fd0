"""Overlay merge rules, one at a time, on entry tables written by hand.

Expected values follow the OCI image spec's whiteout rules and what a
container runtime does when it extracts layers in order.
"""

from __future__ import annotations

import pandas as pd

from layerlab import _schema
from layerlab._merge import merge
from layerlab._tables import waste_table


def entry(path: str, kind: str = "file", size: int = 0, **fields) -> dict:
    row = {
        "path": path,
        "kind": kind,
        "size": size if kind == "file" else 0,
        "tar_size": size,
        "mode": fields.get("mode", 0o755 if kind == "dir" else 0o644),
        "uid": fields.get("uid", 0),
        "gid": fields.get("gid", 0),
        "mtime": 0,
        "link_target": fields.get("target"),
        "hash": fields.get("hash", f"h-{path}-{size}" if kind == "file" else None),
        "order": 0,
    }
    return row


def layer(*rows: dict) -> pd.DataFrame:
    table = pd.DataFrame(list(rows), columns=list(_schema.ENTRY_COLUMNS))
    table["order"] = range(len(table))
    return _schema.conform(table, _schema.ENTRY_COLUMNS)


def final(layers: list[pd.DataFrame]) -> dict[str, tuple[str, int, int]]:
    _, filesystem = merge(layers)
    return {
        row.path: (str(row.kind), int(row.size), int(row.layer))
        for row in filesystem.itertuples()
    }


def row_of(files: pd.DataFrame, layer_index: int, path: str) -> pd.Series:
    match = files[(files["layer"] == layer_index) & (files["path"] == path)]
    assert len(match) == 1, f"expected one row for {path} in layer {layer_index}"
    return match.iloc[0]


def test_overwritten_file_wastes_lower_copy() -> None:
    layers = [layer(entry("a", size=10)), layer(entry("a", size=3))]
    files, _ = merge(layers)
    assert final(layers) == {"a": ("file", 3, 1)}
    lower = row_of(files, 0, "a")
    assert not lower["visible"]
    assert lower["hidden_by"] == 1
    assert lower["waste_reason"] == "overwritten"
    assert row_of(files, 1, "a")["change"] == "modified"


def test_whiteout_deletes_file() -> None:
    layers = [
        layer(entry("d", "dir"), entry("d/f", size=5)),
        layer(entry("d/f", "whiteout")),
    ]
    files, _ = merge(layers)
    assert final(layers) == {"d": ("dir", 0, 0)}
    assert row_of(files, 0, "d/f")["waste_reason"] == "deleted"
    assert row_of(files, 1, "d/f")["change"] == "deleted"


def test_whiteout_of_directory_hides_descendants() -> None:
    layers = [
        layer(
            entry("d", "dir"),
            entry("d/e", "dir"),
            entry("d/e/f", size=7),
            entry("x", size=1),
        ),
        layer(entry("d", "whiteout")),
    ]
    files, _ = merge(layers)
    assert final(layers) == {"x": ("file", 1, 0)}
    assert row_of(files, 0, "d/e/f")["hidden_by"] == 1
    assert waste_table(files)["size"].sum() == 7


def test_whiteout_placement_does_not_matter() -> None:
    # The marker applies to lower layers even when it comes after new
    # content at the same path in the tar.
    before = [
        layer(entry("f", size=4)),
        layer(entry("f", "whiteout"), entry("f", size=2)),
    ]
    after = [
        layer(entry("f", size=4)),
        layer(entry("f", size=2), entry("f", "whiteout")),
    ]
    assert final(before) == {"f": ("file", 2, 1)}
    assert final(after) == {"f": ("file", 2, 1)}


def test_opaque_hides_only_lower_children() -> None:
    layers = [
        layer(entry("d", "dir"), entry("d/old", size=9)),
        layer(entry("d/new", size=1), entry("d", "opaque"), entry("d", "dir")),
    ]
    files, _ = merge(layers)
    assert final(layers) == {"d": ("dir", 0, 1), "d/new": ("file", 1, 1)}
    assert row_of(files, 0, "d/old")["waste_reason"] == "deleted"
    marker = files[files["kind"] == "opaque"].iloc[0]
    assert marker["change"] == "deleted"


def test_opaque_that_hides_nothing_is_noop() -> None:
    layers = [layer(entry("a", size=1)), layer(entry("n", "dir"), entry("n", "opaque"))]
    files, _ = merge(layers)
    marker = files[files["kind"] == "opaque"].iloc[0]
    assert marker["change"] == "noop"
    assert waste_table(files).empty


def test_file_replaces_directory() -> None:
    layers = [
        layer(entry("p", "dir"), entry("p/child", size=3)),
        layer(entry("p", size=2)),
    ]
    files, _ = merge(layers)
    assert final(layers) == {"p": ("file", 2, 1)}
    assert row_of(files, 0, "p/child")["waste_reason"] == "deleted"
    assert row_of(files, 1, "p")["change"] == "modified"


def test_directory_replaces_file() -> None:
    layers = [layer(entry("p", size=5)), layer(entry("p", "dir"), entry("p/c", size=1))]
    files, _ = merge(layers)
    assert final(layers) == {"p": ("dir", 0, 1), "p/c": ("file", 1, 1)}
    assert row_of(files, 0, "p")["waste_reason"] == "overwritten"


def test_symlink_replaces_directory_and_is_not_followed() -> None:
    layers = [
        layer(entry("lib", "dir"), entry("lib/x", size=4), entry("real", "dir")),
        layer(entry("lib", "symlink", target="real"), entry("lib/y", size=0, hash="h")),
    ]
    fs = final(layers)
    assert fs["lib/y"] == ("file", 0, 1)
    assert "lib/x" not in fs


def test_same_path_twice_in_one_layer_later_wins() -> None:
    layers = [layer(entry("f", size=10), entry("f", size=4))]
    files, _ = merge(layers)
    assert final(layers) == {"f": ("file", 4, 0)}
    first = files.iloc[0]
    assert not first["visible"]
    assert first["hidden_by"] == 0
    assert first["waste_reason"] == "overwritten"


def test_identical_rewrite_and_chmod() -> None:
    layers = [
        layer(entry("same", size=6, hash="x"), entry("chmod", size=8, hash="y")),
        layer(
            entry("same", size=6, hash="x"),
            entry("chmod", size=8, hash="y", mode=0o600),
        ),
    ]
    files, _ = merge(layers)
    assert row_of(files, 1, "same")["change"] == "unchanged"
    assert row_of(files, 1, "chmod")["change"] == "metadata"
    assert row_of(files, 0, "same")["waste_reason"] == "identical"
    assert row_of(files, 0, "chmod")["waste_reason"] == "metadata"


def test_hardlink_keeps_content_after_source_deleted() -> None:
    layers = [
        layer(entry("a", size=100, hash="c"), entry("b", "hardlink", target="a")),
        layer(entry("a", "whiteout")),
    ]
    files, filesystem = merge(layers)
    assert final(layers) == {"b": ("hardlink", 100, 0)}
    source = row_of(files, 0, "a")
    assert not source["visible"]
    # b still shows a's bytes, so they are not waste.
    assert pd.isna(source["waste_reason"])
    assert waste_table(files).empty
    assert filesystem.iloc[0]["hash"] == "c"


def test_hardlink_in_later_layer_copies_up() -> None:
    layers = [
        layer(entry("a", size=50, hash="c")),
        layer(entry("a", size=50, hash="c"), entry("b", "hardlink", target="a")),
    ]
    files, _ = merge(layers)
    assert final(layers) == {"a": ("file", 50, 1), "b": ("hardlink", 50, 1)}
    assert row_of(files, 0, "a")["waste_reason"] == "identical"


def test_missing_parents_are_implied() -> None:
    layers = [layer(entry("a/b/c", size=1))]
    assert final(layers) == {
        "a": ("dir", 0, 0),
        "a/b": ("dir", 0, 0),
        "a/b/c": ("file", 1, 0),
    }


def test_whiteout_of_missing_path_is_noop() -> None:
    layers = [layer(entry("a", size=1)), layer(entry("ghost", "whiteout"))]
    files, _ = merge(layers)
    assert files[files["kind"] == "whiteout"].iloc[0]["change"] == "noop"
    assert final(layers) == {"a": ("file", 1, 0)}


def test_delete_then_recreate_directory() -> None:
    layers = [
        layer(entry("d", "dir"), entry("d/a", size=3)),
        layer(entry("d", "whiteout")),
        layer(entry("d", "dir"), entry("d/b", size=2)),
    ]
    files, _ = merge(layers)
    assert final(layers) == {"d": ("dir", 0, 2), "d/b": ("file", 2, 2)}
    assert row_of(files, 2, "d")["change"] == "added"
    assert row_of(files, 0, "d/a")["hidden_by"] == 1
