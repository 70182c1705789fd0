"""The history of one path across layers: who wrote it, who hid it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ._tree import FileIndex

HISTORY_COLUMNS = ("layer", "what", "kind", "size", "entries", "hidden_by")
"""Columns of :func:`path_history`.

- ``what``: for an entry at the path, its change (``added``, ``modified``,
  ``metadata``, ``unchanged``). A whiteout that removed the path is
  ``deleted``, one that hid nothing ``noop``, and an opaque marker ``hid
  below``. A directory also gets ``wrote below`` rows (entries a layer wrote
  below it) and ``hid below`` rows (stored versions below it that a layer
  hid).
- ``size``: content bytes of the entry, or of the entries below.
- ``entries``: entries below, for the ``below`` rows; 0 otherwise.
- ``hidden_by``: the layer that hid this version, -1 when none did.
"""

_MARKER_WHAT = {"whiteout": "deleted", "opaque": "hid below"}


def path_history(image: Any, path: str, *, index: FileIndex) -> pd.DataFrame:
    """Return what every layer did to ``path``, and below it for a directory."""
    path = path.strip("/")
    own = index.rows_at(path)
    parts = [_own_rows(index, own)]
    if index.directory_id(path) >= 0:
        below = index.rows_below(path)
        parts.append(_written_below(index, below))
        parts.append(_hidden_below(index, below))
    table = pd.concat([part for part in parts if len(part)], ignore_index=True)
    if table.empty:
        return pd.DataFrame({name: [] for name in HISTORY_COLUMNS}).astype(_DTYPES)
    table = table.sort_values(["layer", "order"], kind="stable")
    return table[list(HISTORY_COLUMNS)].reset_index(drop=True).astype(_DTYPES)


def _own_rows(index: FileIndex, rows: np.ndarray) -> pd.DataFrame:
    kinds = index.kind[rows]
    changes = index.files_change[rows]
    what = [
        _MARKER_WHAT[kind] if kind in _MARKER_WHAT and change != "noop" else change
        for kind, change in zip(kinds, changes)
    ]
    return pd.DataFrame(
        {
            "layer": index.layer[rows],
            "what": what,
            "kind": kinds,
            "size": index.size[rows],
            "entries": 0,
            "hidden_by": index.hidden_by[rows],
            "order": 0,
        }
    )


def _written_below(index: FileIndex, rows: np.ndarray) -> pd.DataFrame:
    rows = rows[~index.marker[rows]]
    table = pd.DataFrame({"layer": index.layer[rows], "size": index.size[rows]})
    grouped = table.groupby("layer", as_index=False).agg(
        size=("size", "sum"), entries=("size", "size")
    )
    grouped["what"] = "wrote below"
    grouped["kind"] = "dir"
    grouped["hidden_by"] = -1
    grouped["order"] = 1
    return grouped


def _hidden_below(index: FileIndex, rows: np.ndarray) -> pd.DataFrame:
    rows = rows[(index.hidden_by[rows] >= 0) & ~index.marker[rows]]
    table = pd.DataFrame({"layer": index.hidden_by[rows], "size": index.size[rows]})
    grouped = table.groupby("layer", as_index=False).agg(
        size=("size", "sum"), entries=("size", "size")
    )
    grouped["what"] = "hid below"
    grouped["kind"] = "dir"
    grouped["hidden_by"] = -1
    grouped["order"] = 2
    return grouped


_DTYPES: dict[str, Any] = {
    "layer": "int64",
    "what": object,
    "kind": object,
    "size": "int64",
    "entries": "int64",
    "hidden_by": "int64",
}
