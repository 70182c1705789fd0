"""Stack layers the way an overlay filesystem does, one named rule at a time.

The rules follow the OCI image spec (layer.md, "Whiteouts") and what
container runtimes do when they extract layers:

- a whiteout ``.wh.NAME`` and an opaque marker ``.wh..wh..opq`` apply only to
  lower layers, wherever they sit in their layer's tar;
- the same path twice in one layer: the later entry wins;
- a non-directory that replaces a directory hides everything below it, and a
  directory that replaces a non-directory hides it;
- a directory over a directory only updates its metadata;
- a hardlink shares its target's content, so the target's bytes stay visible
  for as long as any of its links does, even when the path it was made from
  is deleted;
- symlinks are kept as links and never followed.

The result is one array per column of the ``files`` table (change, visible,
hidden_by, waste_reason) plus the rows of the final filesystem.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import _schema

CONTENT_KINDS = frozenset(_schema.KINDS) - {"whiteout", "opaque"}


@dataclass
class _Rows:
    """The concatenated entries of all layers, as plain Python lists."""

    layer: list[int]
    path: list[str]
    kind: list[str]
    size: list[int]
    mode: list[int]
    uid: list[int]
    gid: list[int]
    link_target: list[Any]
    hash: list[Any]


@dataclass
class MergeState:
    """The merged filesystem so far, and what happened to every row."""

    rows: _Rows
    visible: dict[str, int] = field(default_factory=dict)
    children: dict[str, set[str]] = field(default_factory=dict)
    implicit_dirs: dict[str, int] = field(default_factory=dict)
    change: list[str | None] = field(default_factory=list)
    hidden_by: list[int] = field(default_factory=list)
    reason: list[str | None] = field(default_factory=list)

    def show(self, path: str, row: int) -> None:
        self.visible[path] = row
        parent = path.rpartition("/")[0]
        self.children.setdefault(parent, set()).add(path)


def merge(entries: Sequence[pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Merge per-layer entry tables into the ``files`` and ``filesystem`` tables."""
    combined = _combine(entries)
    rows = _as_rows(combined)
    state = MergeState(rows=rows)
    count = len(rows.path)
    state.change = [None] * count
    state.hidden_by = [-1] * count
    state.reason = [None] * count

    starts = np.searchsorted(
        np.asarray(rows.layer, dtype=np.int64), np.arange(len(entries) + 1)
    )
    for layer in range(len(entries)):
        _apply_layer(state, layer, int(starts[layer]), int(starts[layer + 1]))

    _keep_hardlinked_content(state)
    files = _files_table(combined, state)
    filesystem = _filesystem_table(files, state)
    return files, filesystem


def _combine(entries: Sequence[pd.DataFrame]) -> pd.DataFrame:
    frames = []
    for index, table in enumerate(entries):
        frame = table.copy()
        frame.insert(0, "layer", np.int32(index))
        frames.append(frame)
    if not frames:
        return _schema.empty({"layer": "int32", **_schema.ENTRY_COLUMNS})
    return pd.concat(frames, ignore_index=True)


def _as_rows(table: pd.DataFrame) -> _Rows:
    def values(name: str) -> list[Any]:
        column = table[name]
        if column.dtype.name in ("string", "str"):
            return [None if value is pd.NA else value for value in column.tolist()]
        return column.tolist()

    return _Rows(
        layer=values("layer"),
        path=values("path"),
        kind=[str(kind) for kind in table["kind"].tolist()],
        size=values("size"),
        mode=values("mode"),
        uid=values("uid"),
        gid=values("gid"),
        link_target=values("link_target"),
        hash=values("hash"),
    )


def _apply_layer(state: MergeState, layer: int, start: int, stop: int) -> None:
    rows = state.rows
    winners: dict[str, int] = {}
    markers: list[int] = []
    for row in range(start, stop):
        if rows.kind[row] in ("whiteout", "opaque"):
            markers.append(row)
            continue
        earlier = winners.get(rows.path[row])
        if earlier is not None:
            _shadow_in_layer(state, earlier, row, layer)
        winners[rows.path[row]] = row

    for row in markers:
        _apply_marker(state, row, layer)
    for row in winners.values():
        _apply_content(state, row, layer)


def _shadow_in_layer(state: MergeState, earlier: int, later: int, layer: int) -> None:
    # The same path twice in one tar: extraction overwrites, so the earlier
    # entry's bytes are stored but never visible.
    state.change[earlier] = "modified"
    state.hidden_by[earlier] = layer
    state.reason[earlier] = _reason_for(_compare(state.rows, earlier, later))


def _apply_marker(state: MergeState, row: int, layer: int) -> None:
    path = state.rows.path[row]
    if state.rows.kind[row] == "opaque":
        hidden = _hide_descendants(state, path, layer)
    elif path in state.visible:
        hidden = _hide_descendants(state, path, layer) + 1
        _hide(state, path, layer, "deleted")
    else:
        hidden = 0
    state.change[row] = "deleted" if hidden else "noop"


def _apply_content(state: MergeState, row: int, layer: int) -> None:
    rows = state.rows
    path = rows.path[row]
    _ensure_parents(state, path, layer)

    previous = state.visible.get(path)
    if previous is None:
        state.change[row] = "added"
        state.show(path, row)
        return

    change = (
        _compare(rows, previous, row) if previous >= 0 else _over_implicit(rows, row)
    )
    state.change[row] = change
    previous_is_dir = previous < 0 or rows.kind[previous] == "dir"
    if previous_is_dir and rows.kind[row] != "dir":
        _hide_descendants(state, path, layer)
    _hide(state, path, layer, _reason_for(change))
    state.show(path, row)


def _over_implicit(rows: _Rows, row: int) -> str:
    return "unchanged" if rows.kind[row] == "dir" else "modified"


def _ensure_parents(state: MergeState, path: str, layer: int) -> None:
    # A tar may list a/b/c without a/b; extraction creates the missing
    # directories, and a non-directory in the way is replaced.
    parent = path.rpartition("/")[0]
    missing = []
    while parent:
        row = state.visible.get(parent)
        if row is not None and (row < 0 or state.rows.kind[row] == "dir"):
            break
        if row is not None:
            _hide(state, parent, layer, "deleted")
        missing.append(parent)
        parent = parent.rpartition("/")[0]
    for directory in reversed(missing):
        state.implicit_dirs[directory] = layer
        state.show(directory, -1 - layer)


def _hide(state: MergeState, path: str, layer: int, reason: str) -> None:
    row = state.visible.pop(path)
    state.children.get(path.rpartition("/")[0], set()).discard(path)
    state.implicit_dirs.pop(path, None)
    if row >= 0:
        state.hidden_by[row] = layer
        state.reason[row] = reason


def _hide_descendants(state: MergeState, directory: str, layer: int) -> int:
    """Hide every visible path below ``directory`` and return how many."""
    count = 0
    pending = [directory]
    while pending:
        current = pending.pop()
        for child in state.children.pop(current, ()):
            if child not in state.visible:
                continue
            pending.append(child)
            row = state.visible.pop(child)
            state.implicit_dirs.pop(child, None)
            if row >= 0:
                state.hidden_by[row] = layer
                state.reason[row] = "deleted"
            count += 1
    return count


def _compare(rows: _Rows, old: int, new: int) -> str:
    """Classify what the entry ``new`` does to the visible entry ``old``."""
    if rows.kind[old] != rows.kind[new]:
        return "modified"
    same_owner = (rows.mode[old], rows.uid[old], rows.gid[old]) == (
        rows.mode[new],
        rows.uid[new],
        rows.gid[new],
    )
    if not _same_content(rows, old, new):
        return "modified"
    return "unchanged" if same_owner else "metadata"


def _same_content(rows: _Rows, old: int, new: int) -> bool:
    kind = rows.kind[new]
    if kind == "file":
        # Without content hashes, identical rewrites cannot be detected.
        if rows.hash[new] is None or rows.hash[old] is None:
            return False
        return rows.hash[old] == rows.hash[new] and rows.size[old] == rows.size[new]
    if kind in ("symlink", "hardlink"):
        return rows.link_target[old] == rows.link_target[new]
    return True


def _reason_for(change: str) -> str:
    return {"unchanged": "identical", "metadata": "metadata"}.get(change, "overwritten")


def _keep_hardlinked_content(state: MergeState) -> None:
    # A file's bytes stay in use while a hardlink to it, written in the same
    # layer, is visible: that path shows the same content.
    rows = state.rows
    last_file: dict[tuple[int, str], int] = {}
    for row, kind in enumerate(rows.kind):
        if kind == "file":
            last_file[(rows.layer[row], rows.path[row])] = row
        elif kind == "hardlink" and state.hidden_by[row] < 0:
            target = _link_source(rows, last_file, row)
            if target is not None and state.hidden_by[target] >= 0:
                state.reason[target] = None


def _link_source(
    rows: _Rows, last_file: dict[tuple[int, str], int], row: int
) -> int | None:
    seen = set()
    target = rows.link_target[row]
    layer = rows.layer[row]
    while target is not None and target not in seen:
        seen.add(target)
        found = last_file.get((layer, target))
        if found is not None:
            return found
        target = None
    return None


def _files_table(combined: pd.DataFrame, state: MergeState) -> pd.DataFrame:
    files = combined
    hidden = np.asarray(state.hidden_by, dtype=np.int64)
    is_marker = files["kind"].isin(["whiteout", "opaque"]).to_numpy()
    files["change"] = pd.Categorical(state.change, categories=_schema.CHANGES)
    files["visible"] = (hidden < 0) & ~is_marker
    files["hidden_by"] = pd.array(
        [None if value < 0 else value for value in state.hidden_by], dtype="Int32"
    )
    reasons = [
        None if marker else reason for reason, marker in zip(state.reason, is_marker)
    ]
    files["waste_reason"] = pd.Categorical(reasons, categories=_schema.WASTE_REASONS)
    return _schema.conform(files, _schema.FILES_COLUMNS)


def _filesystem_table(files: pd.DataFrame, state: MergeState) -> pd.DataFrame:
    visible_rows = sorted(row for row in state.visible.values() if row >= 0)
    table = files.iloc[visible_rows][list(_schema.FILESYSTEM_COLUMNS)].copy()
    table = _fill_hardlink_content(table, files)
    if state.implicit_dirs:
        table = pd.concat(
            [table, _implicit_table(state.implicit_dirs)], ignore_index=True
        )
    table = table.sort_values("path", kind="stable", ignore_index=True)
    return _schema.conform(table, _schema.FILESYSTEM_COLUMNS)


def _fill_hardlink_content(table: pd.DataFrame, files: pd.DataFrame) -> pd.DataFrame:
    links = table["kind"] == "hardlink"
    if not links.any():
        return table
    regular = files[files["kind"] == "file"]
    source = regular.drop_duplicates(["layer", "path"], keep="last").set_index(
        ["layer", "path"]
    )
    keys = pd.MultiIndex.from_arrays(
        [table.loc[links, "layer"], table.loc[links, "link_target"]]
    )
    found = source.reindex(keys)
    table.loc[links, "size"] = found["size"].fillna(0).astype("int64").to_numpy()
    table.loc[links, "hash"] = found["hash"].to_numpy()
    return table


def _implicit_table(implicit: dict[str, int]) -> pd.DataFrame:
    count = len(implicit)
    return pd.DataFrame(
        {
            "path": list(implicit),
            "kind": ["dir"] * count,
            "size": [0] * count,
            "mode": [0o755] * count,
            "uid": [0] * count,
            "gid": [0] * count,
            "mtime": [0] * count,
            "link_target": [None] * count,
            "hash": [None] * count,
            "layer": list(implicit.values()),
        }
    )
