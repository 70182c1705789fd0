"""The directory tree behind the treemap: bytes per directory, bounded in size.

A treemap of every path of a large image would send hundreds of thousands of
nodes to the browser. :func:`directory_tree` keeps the largest paths, up to
a node budget, and folds the rest of each directory into one
``(N smaller files)`` node, so the sizes still add up at every level.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._errors import OptionError

ROOT_ID = "/"

# The tables' paths are normalised (no empty component, see
# layerlab.columns.ENTRY_COLUMNS), so no real path's id contains "//".
AGGREGATE_SUFFIX = "//*"

NODE_COLUMNS = (
    "id",
    "parent",
    "label",
    "path",
    "value",
    "files",
    "layer",
    "layer_bytes",
    "layer_count",
    "aggregate",
)
"""Columns of :func:`directory_tree`'s result.

- ``id``, ``parent``: node ids (``/`` for the root, ``/PATH`` for a path,
  ``/DIR//*`` for the smaller files of ``DIR``); the root's parent is ``""``.
- ``value``: bytes of regular-file content at or below the node.
- ``files``: entries other than directories at or below the node.
- ``layer``: the layer that wrote most of ``value`` (-1 when ``value`` is 0);
  ``layer_bytes``: its bytes; ``layer_count``: layers that wrote any bytes.
- ``aggregate``: whether the node stands for the smaller files of its parent.
"""


def directory_tree(filesystem: pd.DataFrame, *, max_nodes: int = 2000) -> pd.DataFrame:
    """Return the treemap nodes of ``filesystem``, at most ``max_nodes`` of them.

    Only regular files have bytes: a hardlink's content is counted once, at
    the file it links to. Paths without bytes are left out of the tree but
    counted in ``files``.
    """
    if max_nodes < 2:
        raise OptionError(f"max_nodes must be at least 2, not {max_nodes}")
    entries = _entries(filesystem)
    directories = _directory_layers(entries)
    summary = _dominant(directories, "directory")
    candidates = _candidates(entries, summary)
    root = _root_row(summary)
    count = _fit(candidates, root, max_nodes)
    selected = _as_nodes(candidates.iloc[:count])
    aggregates = _aggregates(selected, candidates, directories, root)
    nodes = pd.concat([root, selected, aggregates], ignore_index=True)
    nodes["parent"] = nodes["parent_id"]
    return nodes[list(NODE_COLUMNS)].astype(
        {
            "value": "int64",
            "files": "int64",
            "layer": "int64",
            "layer_bytes": "int64",
            "layer_count": "int64",
            "aggregate": "bool",
        }
    )


def _entries(filesystem: pd.DataFrame) -> pd.DataFrame:
    table = filesystem[filesystem["path"].fillna("") != ""]
    paths = table["path"].astype(str).tolist()
    is_dir = (table["kind"] == "dir").to_numpy()
    return pd.DataFrame(
        {
            "path": paths,
            "parent": [path.rpartition("/")[0] for path in paths],
            "layer": table["layer"].to_numpy(dtype=np.int64),
            "bytes": np.where(table["kind"] == "file", table["size"], 0).astype(
                np.int64
            ),
            "files": (~is_dir).astype(np.int64),
            "is_dir": is_dir,
        }
    )


def _directory_layers(entries: pd.DataFrame) -> pd.DataFrame:
    """Return bytes and file counts per (directory, layer), root included.

    Entries are first summed per parent directory, which is far fewer rows
    than entries, and only those sums are spread to every ancestor.
    """
    direct = entries.groupby(["parent", "layer"], as_index=False)[
        ["bytes", "files"]
    ].sum()
    directory_names = direct["parent"].tolist()
    repeats = [_depth(name) + 1 for name in directory_names]
    ancestors = [
        ancestor for name in directory_names for ancestor in _self_and_ancestors(name)
    ]
    spread = direct.loc[direct.index.repeat(repeats)].reset_index(drop=True)
    spread["directory"] = ancestors
    table = spread.groupby(["directory", "layer"], as_index=False)[
        ["bytes", "files"]
    ].sum()

    # Directories that contain nothing still exist as nodes of zero bytes.
    empty = entries.loc[entries["is_dir"], "path"]
    missing = sorted(set(empty) - set(table["directory"]))
    if missing:
        extra = pd.DataFrame(
            {"directory": missing, "layer": -1, "bytes": 0, "files": 0}
        )
        table = pd.concat([table, extra], ignore_index=True)
    return table


def _depth(path: str) -> int:
    return path.count("/") + 1 if path else 0


def _self_and_ancestors(path: str) -> list[str]:
    names = [path]
    while path:
        path = path.rpartition("/")[0]
        names.append(path)
    return names


def _dominant(table: pd.DataFrame, key: str) -> pd.DataFrame:
    """Return per ``key``: total bytes and files, the top layer and its share."""
    totals = table.groupby(key)[["bytes", "files"]].sum()
    with_bytes = table[table["bytes"] > 0]
    ordered = with_bytes.sort_values(
        [key, "bytes", "layer"], ascending=[True, False, True]
    )
    top = ordered.drop_duplicates(key).set_index(key)
    totals["layer"] = top["layer"].reindex(totals.index).fillna(-1).astype(np.int64)
    totals["layer_bytes"] = (
        top["bytes"].reindex(totals.index).fillna(0).astype(np.int64)
    )
    totals["layer_count"] = (
        with_bytes.groupby(key).size().reindex(totals.index).fillna(0)
    ).astype(np.int64)
    return totals


def _candidates(entries: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """Return every path with bytes, largest first, each after its ancestors."""
    folders = (
        summary.drop(index="", errors="ignore")
        .reset_index()
        .rename(columns={"directory": "path"})
    )
    folders["is_dir"] = True

    leaves = entries.loc[~entries["is_dir"] & (entries["bytes"] > 0)].copy()
    leaves["layer_bytes"] = leaves["bytes"]
    leaves["layer_count"] = 1
    columns = ["path", "bytes", "files", "layer", "layer_bytes", "layer_count"]
    table = pd.concat(
        [
            folders[folders["bytes"] > 0][columns + ["is_dir"]],
            leaves[columns + ["is_dir"]],
        ],
        ignore_index=True,
    )
    paths = table["path"].tolist()
    table["parent"] = [path.rpartition("/")[0] for path in paths]
    table["depth"] = [_depth(path) for path in paths]
    # A directory has at least the bytes of any path below it and sorts
    # before it on ties, so every prefix of this order contains the
    # ancestors of its paths.
    table = table.sort_values(
        ["bytes", "depth", "path"], ascending=[False, True, True], ignore_index=True
    )
    return table.rename(columns={"bytes": "value"})


def _as_nodes(table: pd.DataFrame) -> pd.DataFrame:
    nodes = table.copy()
    paths = nodes["path"].tolist()
    nodes["id"] = [_node_id(path) for path in paths]
    nodes["parent_id"] = [_node_id(parent) for parent in nodes["parent"].tolist()]
    nodes["label"] = [path.rpartition("/")[2] for path in paths]
    nodes["aggregate"] = False
    return nodes


def _node_id(path: str) -> str:
    return ROOT_ID + path


def _root_row(summary: pd.DataFrame) -> pd.DataFrame:
    if "" in summary.index:
        root = summary.loc[[""]].reset_index(drop=True)
    else:
        root = pd.DataFrame(
            {"bytes": [0], "files": [0], "layer": [-1], "layer_bytes": [0]}
        )
        root["layer_count"] = 0
    root = root.rename(columns={"bytes": "value"})
    root["id"] = ROOT_ID
    root["parent"] = ""
    root["parent_id"] = ""
    root["path"] = ""
    root["label"] = ROOT_ID
    root["aggregate"] = False
    root["is_dir"] = True
    return root


def _fit(candidates: pd.DataFrame, root: pd.DataFrame, max_nodes: int) -> int:
    """Return how many candidates fit in ``max_nodes`` with their aggregates.

    The node count grows with the candidate count except for small dips, so
    a binary search finds the largest count that fits, or one close to it.
    """
    low, high = 0, min(len(candidates), max_nodes - 1)
    while low < high:
        middle = (low + high + 1) // 2
        needed = 1 + middle + _aggregate_count(candidates.iloc[:middle], root)
        if needed <= max_nodes:
            low = middle
        else:
            high = middle - 1
    return low


def _remainders(selected: pd.DataFrame, root: pd.DataFrame) -> pd.DataFrame:
    """Return, per drawn directory, the bytes and files of its undrawn children."""
    owners = pd.concat(
        [
            root[["path", "value", "files"]],
            selected.loc[selected["is_dir"], ["path", "value", "files"]],
        ]
    ).set_index("path")
    drawn = selected.groupby("parent")[["value", "files"]].sum()
    drawn = drawn.reindex(owners.index, fill_value=0)
    return owners - drawn


def _aggregate_count(selected: pd.DataFrame, root: pd.DataFrame) -> int:
    return int((_remainders(selected, root)["value"] > 0).sum())


def _aggregates(
    selected: pd.DataFrame,
    candidates: pd.DataFrame,
    directories: pd.DataFrame,
    root: pd.DataFrame,
) -> pd.DataFrame:
    """Return one ``(N smaller files)`` node per directory with undrawn bytes."""
    remainders = _remainders(selected, root)
    remainders = remainders[remainders["value"] > 0]
    if remainders.empty:
        return pd.DataFrame(columns=list(NODE_COLUMNS) + ["parent_id"])

    layers = _undrawn_layers(selected, directories, remainders.index)
    nodes = remainders.reset_index().rename(columns={"index": "path"})
    nodes = nodes.join(layers, on="path")
    nodes["parent"] = nodes["path"]
    nodes["parent_id"] = [_node_id(path) for path in nodes["path"]]
    nodes["id"] = [_node_id(path) + AGGREGATE_SUFFIX for path in nodes["path"]]
    nodes["label"] = [f"({files:,} smaller files)" for files in nodes["files"]]
    nodes["aggregate"] = True
    nodes["is_dir"] = False
    return nodes


def _undrawn_layers(
    selected: pd.DataFrame, directories: pd.DataFrame, owners: pd.Index
) -> pd.DataFrame:
    """Return the top layer of the undrawn bytes of each directory in ``owners``."""
    owned = directories[directories["directory"].isin(owners)]
    total = owned.groupby(["directory", "layer"])["bytes"].sum()

    children = selected[selected["parent"].isin(owners)]
    child_files = children[~children["is_dir"]]
    drawn_files = child_files.groupby(["parent", "layer"])["value"].sum()
    child_dirs = children.loc[children["is_dir"], ["path", "parent"]]
    dir_layers = directories.merge(child_dirs, left_on="directory", right_on="path")
    drawn_dirs = dir_layers.groupby(["parent", "layer"])["bytes"].sum()
    drawn = drawn_files.add(drawn_dirs, fill_value=0)
    drawn.index = drawn.index.set_names(["directory", "layer"])

    left = total.sub(drawn.reindex(total.index, fill_value=0)).reset_index()
    left = left.rename(columns={0: "bytes"})
    left.columns = ["directory", "layer", "bytes"]
    left["files"] = 0
    summary = _dominant(left, "directory")
    return summary[["layer", "layer_bytes", "layer_count"]]
