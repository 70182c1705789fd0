"""The file tree behind the layer explorer, computed with numpy over ``files``.

:class:`FileIndex` turns an image's ``files`` table into arrays once: a
numeric id for every directory, each entry's parent directory, and its path
id. A :class:`TreeView` is then one layer's rows (that layer's own changes,
or everything up to it), filtered, with the bytes and entry counts of every
directory summed bottom-up. Listing a directory's children reads only that
directory's slice, so a tree of 100,000 entries is expanded one level at a
time without walking the rest.

This module imports no widget library, so the explorer's logic is tested
on plain tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._errors import OptionError

VIEW_CHANGES = ("added", "modified", "removed", "unchanged")
"""Change kinds the explorer filters on.

``modified`` includes a rewrite that changed only the mode or owner
(``metadata`` in ``layerlab.columns.CHANGES``). ``removed`` is a path that a
whiteout, an opaque directory, or a file that replaced its directory hid.
"""

MODES = ("layer", "aggregate")
"""``layer``: the selected layer's own changes. ``aggregate``: the
filesystem as it is after the selected layer, with the paths removed up to
it."""

SORTS = ("size", "name")

# Schema change -> index into VIEW_CHANGES; -1 for markers that hid nothing.
_CHANGE_CODES = {
    "added": 0,
    "modified": 1,
    "metadata": 1,
    "deleted": 2,
    "unchanged": 3,
    "noop": -1,
}
_REMOVED = 2

TREE_COLUMNS = (
    "path",
    "name",
    "depth",
    "kind",
    "change",
    "size",
    "entries",
    "layer",
    "expanded",
)
"""Columns of :meth:`TreeView.rows`, one row per line of the drawn tree.

- ``depth``: 0 for the children of the root.
- ``kind``: the entry kind, ``dir`` for a directory that has no entry of its
  own in the view, or ``more`` for the line that stands for the children
  left out of a long directory.
- ``change``: one of :data:`VIEW_CHANGES`, or empty for a directory that has
  no entry of its own in the view.
- ``size``: content bytes. A directory's line sums the matching entries below
  it, and a ``more`` line sums the children left out.
- ``entries``: matching entries below a directory, or the number of children a
  ``more`` line stands for; 0 for other entries.
- ``layer``: the layer that wrote this version, or -1 when none did.
- ``expanded``: whether a directory's children are listed below it.
"""


@dataclass(frozen=True)
class Filters:
    """Filters of the tree: change kinds, path pattern, minimum size.

    Attributes:
        changes: change kinds to show, from :data:`VIEW_CHANGES`.
        pattern: path filter; empty shows every path.
        regex: read ``pattern`` as a Python regular expression searched in
            the path; otherwise as a glob (see :func:`path_regex`).
        min_size: smallest content size in bytes of an entry to show.
            Directories without content of their own are then shown only
            for the entries below them.
    """

    changes: frozenset[str] = frozenset(VIEW_CHANGES)
    pattern: str = ""
    regex: bool = False
    min_size: int = 0


def path_regex(pattern: str, *, regex: bool = False) -> re.Pattern[str] | None:
    """Compile the path filter ``pattern``; None when it is empty.

    A glob without wildcards matches any path that contains it. A glob with
    wildcards matches whole path components: ``*`` and ``?`` stop at ``/``
    and ``**`` does not. With a ``/`` it is anchored at the root (a leading
    ``/`` is optional), otherwise it matches any one component. Either way a
    matching directory brings everything below it.

    Raises:
        OptionError: the regular expression does not compile.
    """
    text = pattern.strip()
    if not text:
        return None
    if regex:
        try:
            return re.compile(text)
        except re.error as error:
            raise OptionError(f"invalid regular expression {text!r}: {error}") from None
    if not any(char in text for char in "*?["):
        return re.compile(re.escape(text.lstrip("/")))
    body = _glob_body(text.lstrip("/"))
    if "/" in text.strip("/"):
        return re.compile(f"^{body}(?:/|$)")
    return re.compile(f"(?:^|/){body}(?:/|$)")


def _glob_body(glob: str) -> str:
    parts: list[str] = []
    index = 0
    while index < len(glob):
        char = glob[index]
        if glob.startswith("**", index):
            parts.append(".*")
            index += 2
            continue
        if char == "*":
            parts.append("[^/]*")
        elif char == "?":
            parts.append("[^/]")
        elif char == "[" and "]" in glob[index + 2 :]:
            close = glob.index("]", index + 2)
            inner = glob[index + 1 : close].replace("\\", "\\\\")
            if inner.startswith("!"):
                inner = "^" + inner[1:]
            parts.append(f"[{inner}]")
            index = close
        else:
            parts.append(re.escape(char))
        index += 1
    return "".join(parts)


_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?)\s*([kmgt]?)(i?)(b?)\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Read a byte count such as ``2048``, ``10k``, ``1.5 MB`` or ``4 MiB``.

    ``k``, ``M``, ``G`` and ``T`` are powers of 1000, as layerlab prints
    sizes; with ``i`` they are powers of 1024. Empty text is 0.

    Raises:
        OptionError: the text is not a size.
    """
    if not text.strip():
        return 0
    match = _SIZE.match(text)
    if match is None:
        raise OptionError(f"invalid size {text!r}: expected e.g. 2048, 10k, 1.5MB")
    number, prefix, binary, _ = match.groups()
    power = "kmgt".find(prefix.lower()) + 1 if prefix else 0
    base = 1024 if binary else 1000
    return int(float(number) * base**power)


class FileIndex:
    """An image's ``files`` table as arrays, with directory ids.

    Directory id 0 is the root (path ``""``). Every parent of an entry, and
    every entry of kind ``dir``, has an id.
    """

    def __init__(self, files: pd.DataFrame, layer_count: int) -> None:
        self.layer_count = layer_count
        self.path = files["path"].to_numpy(dtype=object, na_value="")
        self.layer = files["layer"].to_numpy(dtype=np.int64)
        self.size = files["size"].to_numpy(dtype=np.int64)
        self.kind = files["kind"].astype(str).to_numpy(dtype=object)
        self.hidden_by = files["hidden_by"].fillna(-1).to_numpy(dtype=np.int64)
        self.marker = np.isin(self.kind, ["whiteout", "opaque"])
        self.files_change = files["change"].astype(str).to_numpy(dtype=object)
        codes = pd.Series(self.files_change).map(_CHANGE_CODES)
        self.change = codes.fillna(-1).to_numpy(dtype=np.int64)
        self.path_id, uniques = pd.factorize(self.path)
        self._path_ids = pd.Index(uniques)
        self.starts = np.searchsorted(self.layer, np.arange(layer_count + 1))
        self._build_directories()
        self._patterns: dict[tuple[str, bool], np.ndarray] = {}

    def _build_directories(self) -> None:
        parents = [path.rpartition("/")[0] for path in self.path]
        names: dict[str, None] = {"": None}
        for parent in dict.fromkeys(parents):
            while parent not in names:
                names[parent] = None
                parent = parent.rpartition("/")[0]
        for path in self.path[self.kind == "dir"]:
            while path not in names:
                names[path] = None
                path = path.rpartition("/")[0]
        ordered = sorted(names, key=lambda name: (name.count("/"), name))
        index = pd.Index(ordered)
        self.dir_path = np.array(ordered, dtype=object)
        self.dir_parent = index.get_indexer(
            [name.rpartition("/")[0] for name in ordered]
        )
        self.dir_parent[0] = -1
        self.dir_depth = np.array(
            [name.count("/") + 1 if name else 0 for name in ordered], dtype=np.int64
        )
        self.parent = index.get_indexer(parents)
        self.self_dir = index.get_indexer(list(self.path))
        self._dir_index = index

    def directory_id(self, path: str) -> int:
        """Return the id of directory ``path``, or -1 when it is not one."""
        found = self._dir_index.get_indexer([path.strip("/")])
        return int(found[0])

    def rows_at(self, path: str) -> np.ndarray:
        """Return the rows of every version and marker at ``path``."""
        found = int(self._path_ids.get_indexer([path.strip("/")])[0])
        if found < 0:
            return np.zeros(0, dtype=np.int64)
        return np.nonzero(self.path_id == found)[0]

    def rows_below(self, path: str) -> np.ndarray:
        """Return the rows of every entry strictly below directory ``path``."""
        prefix = path.strip("/") + "/"
        below = pd.Series(self.path, dtype=object).str.startswith(prefix)
        return np.nonzero(below.to_numpy(dtype=bool))[0]

    def matches(self, pattern: str, *, regex: bool) -> np.ndarray | None:
        """Return which entries the path filter keeps; None keeps all."""
        compiled = path_regex(pattern, regex=regex)
        if compiled is None:
            return None
        key = (compiled.pattern, regex)
        if key not in self._patterns:
            search = compiled.search
            found = np.fromiter(
                (search(path) is not None for path in self.path),
                dtype=bool,
                count=len(self.path),
            )
            self._patterns[key] = found
        return self._patterns[key]

    def view_rows(self, layer: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
        """Return the rows of ``files`` in one view and the change code of each.

        Change codes index :data:`VIEW_CHANGES`.
        """
        if not 0 <= layer < self.layer_count:
            raise OptionError(
                f"layer {layer} is out of range: the image has "
                f"{self.layer_count} layers"
            )
        if mode == "layer":
            return self._layer_rows(layer)
        if mode == "aggregate":
            return self._aggregate_rows(layer)
        raise OptionError(f"invalid mode {mode!r}: expected one of {MODES}")

    def _layer_rows(self, layer: int) -> tuple[np.ndarray, np.ndarray]:
        start, stop = int(self.starts[layer]), int(self.starts[layer + 1])
        own = np.arange(start, stop)
        # An entry shadowed by a later one at the same path in the same tar
        # never shows; markers show as the paths they removed.
        own = own[~self.marker[own] & (self.hidden_by[own] != layer)]

        hidden_here = np.nonzero((self.hidden_by == layer) & (self.layer < layer))[0]
        rewritten = np.isin(self.path_id[hidden_here], self.path_id[own])
        removed = hidden_here[~rewritten & ~self.marker[hidden_here]]
        return self._combine(own, removed)

    def _aggregate_rows(self, layer: int) -> tuple[np.ndarray, np.ndarray]:
        stop = int(self.starts[layer + 1])
        rows = np.arange(stop)
        rows = rows[~self.marker[:stop]]
        hidden_by = self.hidden_by[rows]
        shown = (hidden_by < 0) | (hidden_by > layer)
        visible = rows[shown]

        gone = rows[~shown]
        gone = gone[~np.isin(self.path_id[gone], self.path_id[visible])]
        # The latest removed version of each path: rows are in layer order.
        reversed_ids = self.path_id[gone][::-1]
        _, first = np.unique(reversed_ids, return_index=True)
        removed = np.sort(gone[::-1][first])
        return self._combine(visible, removed)

    def _combine(
        self, kept: np.ndarray, removed: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        rows = np.concatenate([removed, kept])
        codes = np.concatenate(
            [np.full(len(removed), _REMOVED, dtype=np.int64), self.change[kept]]
        )
        return rows, codes


class TreeView:
    """One filtered view of an image's files, ready to list as a tree.

    Args:
        index: the image's :class:`FileIndex`.
        layer: the selected layer.
        mode: one of :data:`MODES`.
        filters: what to show.
    """

    def __init__(
        self, index: FileIndex, *, layer: int, mode: str, filters: Filters
    ) -> None:
        unknown = set(filters.changes) - set(VIEW_CHANGES)
        if unknown:
            raise OptionError(
                f"invalid change kinds {sorted(unknown)}: expected {VIEW_CHANGES}"
            )
        self.index = index
        rows, codes = index.view_rows(layer, mode)
        keep = np.isin(codes, [VIEW_CHANGES.index(name) for name in filters.changes])
        keep &= index.size[rows] >= filters.min_size
        matches = index.matches(filters.pattern, regex=filters.regex)
        if matches is not None:
            keep &= matches[rows]
        self.rows = rows[keep]
        self.codes = codes[keep]
        self._summarise()

    def _summarise(self) -> None:
        index = self.index
        count = len(index.dir_path)
        parents = index.parent[self.rows]
        sizes = index.size[self.rows]
        self.dir_bytes = np.bincount(parents, weights=sizes, minlength=count)
        self.dir_entries = np.bincount(parents, minlength=count).astype(np.int64)
        # Sum each level into its parent, deepest level first.
        for depth in range(int(index.dir_depth.max(initial=0)), 0, -1):
            level = np.nonzero(index.dir_depth == depth)[0]
            np.add.at(self.dir_bytes, index.dir_parent[level], self.dir_bytes[level])
            np.add.at(
                self.dir_entries, index.dir_parent[level], self.dir_entries[level]
            )
        self.dir_bytes = self.dir_bytes.astype(np.int64)

        # Each directory's own entry in the view; a removed entry gives way
        # to a kept one at the same path (rows list removed ones first).
        self.dir_row = np.full(count, -1, dtype=np.int64)
        own = index.self_dir[self.rows]
        is_dir = own >= 0
        np.maximum.at(self.dir_row, own[is_dir], np.nonzero(is_dir)[0])

        files = np.nonzero(~is_dir)[0]
        order = np.argsort(parents[files], kind="stable")
        self._files = files[order]
        self._file_parents = parents[files][order]
        shown = (self.dir_entries > 0) | (self.dir_row >= 0)
        shown[0] = True
        dirs = np.nonzero(shown)[0][1:]
        order = np.argsort(index.dir_parent[dirs], kind="stable")
        self._dirs = dirs[order]
        self._dir_parents = index.dir_parent[dirs][order]

    @property
    def total_bytes(self) -> int:
        """Content bytes of every entry in the view."""
        return int(self.index.size[self.rows].sum())

    @property
    def total_entries(self) -> int:
        """Entries in the view."""
        return len(self.rows)

    def children(self, directory: int, *, sort: str = "size") -> pd.DataFrame:
        """Return the children of directory id ``directory``, sorted.

        Columns are :data:`TREE_COLUMNS` without ``depth`` and ``expanded``,
        plus ``dir_id`` (-1 for entries that are not directories).
        """
        if sort not in SORTS:
            raise OptionError(f"invalid sort {sort!r}: expected one of {SORTS}")
        index = self.index
        low, high = np.searchsorted(self._dir_parents, [directory, directory + 1])
        dirs = self._dirs[low:high]
        low, high = np.searchsorted(self._file_parents, [directory, directory + 1])
        files = self._files[low:high]

        dir_rows = self.dir_row[dirs]
        file_rows = self.rows[files]
        own_rows = np.where(dir_rows >= 0, self.rows[np.maximum(dir_rows, 0)], -1)
        table = pd.DataFrame(
            {
                "path": np.concatenate([index.dir_path[dirs], index.path[file_rows]]),
                "kind": np.concatenate(
                    [
                        np.where(own_rows >= 0, index.kind[own_rows], "dir"),
                        index.kind[file_rows],
                    ]
                ),
                "change": np.concatenate(
                    [
                        _change_names(self.codes, dir_rows),
                        _change_names(self.codes, files),
                    ]
                ),
                "size": np.concatenate(
                    [
                        self.dir_bytes[dirs] + _own_sizes(index, own_rows),
                        index.size[file_rows],
                    ]
                ),
                "entries": np.concatenate(
                    [self.dir_entries[dirs], np.zeros(len(files), dtype=np.int64)]
                ),
                "layer": np.concatenate(
                    [
                        np.where(own_rows >= 0, index.layer[own_rows], -1),
                        index.layer[file_rows],
                    ]
                ),
                "dir_id": np.concatenate([dirs, np.full(len(files), -1)]),
            }
        )
        table["name"] = [path.rpartition("/")[2] for path in table["path"]]
        if sort == "size":
            table = table.sort_values(["size", "name"], ascending=[False, True])
        else:
            table = table.sort_values("name")
        return table.reset_index(drop=True)

    def tree(
        self,
        expanded: set[str],
        *,
        sort: str = "size",
        max_children: int = 200,
        max_rows: int = 1000,
        limits: dict[str, int] | None = None,
    ) -> pd.DataFrame:
        """Return the lines of the tree with ``expanded`` directories open.

        Args:
            expanded: paths of the directories whose children are listed.
            sort: ``size`` (largest first) or ``name``.
            max_children: children listed per directory; the rest become one
                ``more`` line.
            max_rows: lines in all; listing stops there.
            limits: per directory path, a larger ``max_children``.
        """
        limits = limits or {}
        lines: list[dict[str, Any]] = []

        def walk(directory: int, path: str, depth: int) -> None:
            children = self.children(directory, sort=sort)
            limit = min(limits.get(path, max_children), max_rows - len(lines))
            for child in children.iloc[:limit].to_dict("records"):
                if len(lines) >= max_rows:
                    return
                child["depth"] = depth
                child["expanded"] = child["dir_id"] >= 0 and child["path"] in expanded
                lines.append(child)
                if child["expanded"]:
                    walk(int(child["dir_id"]), child["path"], depth + 1)
            rest = children.iloc[limit:]
            if len(rest) and len(lines) < max_rows:
                lines.append(_more_line(path, rest, depth))

        walk(0, "", 0)
        table = pd.DataFrame(lines, columns=list(TREE_COLUMNS))
        return table.astype(_TREE_DTYPES)

    def frame(self) -> pd.DataFrame:
        """Return every entry of the view as a table with a ``change`` column.

        Columns: ``path``, ``kind``, ``size``, ``layer``, ``change``,
        ``hidden_by`` (-1 when still visible at the end).
        """
        index = self.index
        return pd.DataFrame(
            {
                "path": index.path[self.rows],
                "kind": index.kind[self.rows],
                "size": index.size[self.rows],
                "layer": index.layer[self.rows],
                "change": _change_names(self.codes, np.arange(len(self.rows))),
                "hidden_by": index.hidden_by[self.rows],
            }
        )


_TREE_DTYPES: dict[str, Any] = {
    "path": object,
    "name": object,
    "depth": "int64",
    "kind": object,
    "change": object,
    "size": "int64",
    "entries": "int64",
    "layer": "int64",
    "expanded": "bool",
}


def _change_names(codes: np.ndarray, positions: np.ndarray) -> np.ndarray:
    names = np.array([*VIEW_CHANGES, ""], dtype=object)
    picked = np.where(positions >= 0, codes[np.maximum(positions, 0)], -1)
    return names[picked]


def _own_sizes(index: FileIndex, rows: np.ndarray) -> np.ndarray:
    # A file that replaced a directory keeps the directory's id (its old
    # children are listed as removed below it), so its own bytes count too.
    sizes = np.where(rows >= 0, index.size[np.maximum(rows, 0)], 0)
    return np.where(index.kind[np.maximum(rows, 0)] == "dir", 0, sizes)


def _more_line(path: str, rest: pd.DataFrame, depth: int) -> dict[str, Any]:
    """Return the line that stands for the children of ``path`` left out."""
    return {
        "path": path,
        "name": f"… {len(rest):,} more",
        "depth": depth,
        "kind": "more",
        "change": "",
        "size": int(rest["size"].sum()),
        "entries": len(rest),
        "layer": -1,
        "expanded": False,
    }
