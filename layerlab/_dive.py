"""dive 0.13.1's image metrics, computed from layerlab's entry tables.

dive builds one tree per layer from the tar headers, then scores the image
in ``filetree.Efficiency`` (dive/filetree/efficiency.go):

- Every *leaf* of every layer's tree is one sighting of its path. A path
  seen in two or more layers is an inefficiency whose cost is the sum of the
  sizes of all its sightings, including the first.
- A whiteout leaf ``.wh.NAME`` is a sighting of NAME. Its size is 0 when
  the path below it was a file, and the size of the whole stacked subtree
  when it was a directory.
- The score is the sum over paths of their smallest sighting, divided by
  the sum of all sightings.

Sizes are the tar headers' size fields, so hardlinks, directories and
markers count with the size their header records.

dive stacks the lower layers afresh for every whiteout, which is quadratic.
Here one stacked tree is kept up to date layer by layer, with subtree sums
maintained on every change, so a whiteout costs the depth of its path. The
numbers, quirks included, are dive's.

NOTE: the figures equal dive's only where dive reads the same layers.
Docker 20.10's ``docker save`` (which dive also runs for an engine image)
stores a layer that repeats an earlier one as a symlink to its
``layer.tar``, and dive 0.13.1 reads that symlink as an empty layer. The
entry tables hold the real content, so for such an image dive reports a
size of 0 for the repeated layer and less waste than computed here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from ._tar import encode_name

WHITEOUT_PREFIX = ".wh."
# dive's FileTree.AddPath drops any name with this prefix (the opaque marker
# ``.wh..wh..opq``, aufs' ``.wh..wh.plnk``) and everything below it.
DOUBLE_WHITEOUT_PREFIX = ".wh..wh.."
OPAQUE_NAME = ".wh..wh..opq"

# An implicit node: dive creates missing parents with an empty FileInfo,
# which has size 0 and is not a directory.
_IMPLICIT = (0, False)

INEFFICIENCY_COLUMNS: dict[str, str] = {
    "path": "string",
    "count": "int64",
    "cumulative_size": "int64",
}


@dataclass(frozen=True)
class DiveMetrics:
    """dive's figures for one image, as ``dive --json`` and ``dive --ci`` give them.

    Attributes:
        size_bytes: sum of the layer sizes (``sizeBytes`` in dive's JSON).
        user_size_bytes: sum of the layer sizes except the first.
        efficiency: dive's efficiency score, 1.0 for an image without
            repeated paths (``efficiencyScore``).
        inefficient_bytes: sum of ``cumulative_size`` over
            ``inefficiencies`` (``inefficientBytes``, dive's wasted bytes).
        user_wasted_percent: ``inefficient_bytes / user_size_bytes`` as a
            fraction (0.1 is 10 %). Like dive, NaN when both are 0 and
            infinity when only ``user_size_bytes`` is 0.
        layer_sizes: each layer's size, the sum of its tar headers' size
            fields (``sizeBytes`` of each layer in dive's JSON).
        inefficiencies: one row per path seen in two or more layers, with
            columns ``path`` (no leading ``/``, unlike dive), ``count`` and
            ``cumulative_size``, largest first, in the order of dive's
            ``fileReference`` list.
    """

    size_bytes: int
    user_size_bytes: int
    efficiency: float
    inefficient_bytes: int
    user_wasted_percent: float
    layer_sizes: tuple[int, ...]
    inefficiencies: pd.DataFrame = field(compare=False, repr=False)


@dataclass(slots=True)
class PathRecord:
    """dive's ``EfficiencyData`` of one path: its sightings so far."""

    count: int = 0
    cumulative: int = 0
    # dive starts at -1 and only a sighting replaces it, so a path whose
    # only sighting was cut short keeps -1 and lowers the score's numerator.
    minimum: int = -1

    def add(self, size: int) -> None:
        self.cumulative += size
        if self.minimum < 0 or size < self.minimum:
            self.minimum = size
        self.count += 1


@dataclass(frozen=True)
class PathTable:
    """Every path dive scores, before the sums.

    Attributes:
        layer_sizes: each layer's size.
        records: per path (no leading ``/``), in the order first seen.
        repeated: paths in the order their second sighting was found, which
            is the order dive collects its inefficiencies in.
    """

    layer_sizes: tuple[int, ...]
    records: dict[str, PathRecord]
    repeated: list[str]


def dive_metrics(layer_entries: Sequence[pd.DataFrame]) -> DiveMetrics:
    """Compute dive 0.13.1's metrics from each layer's entry table.

    ``layer_entries`` are the layers' tables with the columns of
    ``layerlab.columns.ENTRY_COLUMNS``, lowest layer first.
    """
    return summarise(tabulate_paths(layer_entries))


def tabulate_paths(layer_entries: Sequence[pd.DataFrame]) -> PathTable:
    """Collect dive's per-path sightings over all layers."""
    records: dict[str, PathRecord] = {}
    repeated: list[str] = []
    sizes: list[int] = []
    stacked: _StackedTree | None = None
    for entries in layer_entries:
        tree = _LayerTree.from_entries(entries)
        sizes.append(tree.file_size)
        order = tree.post_order()
        if stacked is None:
            # StackTreeRange(trees, 0, -1) is a plain copy of the first tree,
            # whiteout nodes included; later ranges stack the first tree
            # again onto that copy (dive/filetree/file_tree.go).
            stacked = _StackedTree.copy_of(tree)
            _visit_leaves(tree, order, stacked, records, repeated)
            # Stacking a layer onto its own copy only changes something when
            # one of its whiteouts removes a path of that same layer.
            if tree.whiteouts:
                stacked.stack(tree, order)
            continue
        _visit_leaves(tree, order, stacked, records, repeated)
        stacked.stack(tree, order)
    return PathTable(layer_sizes=tuple(sizes), records=records, repeated=repeated)


def summarise(
    table: PathTable, *, keep: Callable[[str], bool] | None = None
) -> DiveMetrics:
    """Sum a path table into dive's metrics (image.Analyze in dive/image/image.go).

    ``keep`` leaves out the paths it returns False for, from the score, the
    wasted bytes and the inefficiency list; layer sizes stay as they are.
    """
    records = table.records
    if keep is not None:
        records = {path: record for path, record in records.items() if keep(path)}
    minimum_sum = sum(record.minimum for record in records.values())
    cumulative_sum = sum(record.cumulative for record in records.values())
    efficiency = (
        1.0 if cumulative_sum == 0 else float(minimum_sum) / float(cumulative_sum)
    )

    repeated = [path for path in table.repeated if path in records]
    inefficiencies = _inefficiency_frame(repeated, records)
    wasted = int(inefficiencies["cumulative_size"].sum())
    size_bytes = sum(table.layer_sizes)
    user_size = size_bytes - (table.layer_sizes[0] if table.layer_sizes else 0)
    return DiveMetrics(
        size_bytes=size_bytes,
        user_size_bytes=user_size,
        efficiency=efficiency,
        inefficient_bytes=wasted,
        user_wasted_percent=_go_divide(wasted, user_size),
        layer_sizes=table.layer_sizes,
        inefficiencies=inefficiencies,
    )


def _go_divide(numerator: int, denominator: int) -> float:
    # Go's float64 division: 0/0 is NaN and x/0 is +Inf, where Python raises.
    if denominator == 0:
        return math.nan if numerator == 0 else math.inf
    return float(numerator) / float(denominator)


def _inefficiency_frame(
    repeated: list[str], records: dict[str, PathRecord]
) -> pd.DataFrame:
    # dive sorts ascending with sort.Sort and its JSON lists the result
    # backwards. sort.Sort is an insertion sort, so stable, up to 12 items;
    # past that Go's pdqsort may order equal sizes differently from here.
    ascending = sorted(repeated, key=lambda path: records[path].cumulative)
    ordered = ascending[::-1]
    frame = pd.DataFrame(
        {
            "path": ordered,
            "count": [records[path].count for path in ordered],
            "cumulative_size": [records[path].cumulative for path in ordered],
        }
    )
    return frame.astype(INEFFICIENCY_COLUMNS)  # type: ignore[arg-type]


def _visit_leaves(
    tree: _LayerTree,
    order: list[str],
    stacked: _StackedTree,
    records: dict[str, PathRecord],
    repeated: list[str],
) -> None:
    for key in order:
        if key in tree.parents:
            continue
        parent, _, name = key.rpartition("/")
        deleted = name.startswith(WHITEOUT_PREFIX)
        path = _join(parent, name[len(WHITEOUT_PREFIX) :]) if deleted else key
        record = records.get(path)
        if record is None:
            record = records[path] = PathRecord()
        if deleted:
            size = stacked.deleted_size(path)
            if size is None:
                # GetNode fails for a whiteout of a path that is not below,
                # the visitor returns the error and dive's walk abandons the
                # rest of this layer (Efficiency, dive/filetree/efficiency.go).
                return
        else:
            size = tree.nodes[key][0]
        record.add(size)
        if record.count == 2:
            repeated.append(path)


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def _raw_key(path: str, kind: str) -> str:
    """Return the node's path as spelt in the tar, ``.wh.`` prefix put back."""
    if kind == "whiteout":
        parent, _, name = path.rpartition("/")
        return _join(parent, WHITEOUT_PREFIX + name)
    if kind == "opaque":
        return _join(path, OPAQUE_NAME)
    return path


class _LayerTree:
    """One layer's tree, as dive's FileTree builds it.

    ``nodes`` maps each node's path, spelt with the ``.wh.`` prefix of a
    whiteout, to its header size and whether the header is a directory.
    ``parents`` contains the nodes that have children; the others are leaves.
    """

    def __init__(self) -> None:
        self.nodes: dict[str, tuple[int, bool]] = {}
        self.parents: set[str] = set()
        self.file_size = 0
        self.whiteouts = 0

    @classmethod
    def from_entries(cls, entries: pd.DataFrame) -> _LayerTree:
        tree = cls()
        table = entries.sort_values("order", kind="stable")
        rows = zip(
            table["path"].tolist(),
            table["kind"].astype("string").tolist(),
            table["tar_size"].tolist(),
        )
        for path, kind, size in rows:
            # processLayerTar adds every header's size, markers and repeated
            # paths included (dive/image/docker/image_archive.go).
            tree.file_size += int(size)
            key = _raw_key(str(path), str(kind))
            if key:
                tree.add(key, (int(size), kind == "dir"))
                tree.whiteouts += kind == "whiteout"
        return tree

    def add(self, key: str, info: tuple[int, bool]) -> None:
        """Add a node like FileTree.AddPath: parents created empty, last one wins."""
        nodes = self.nodes
        parent, _, name = key.rpartition("/")
        if parent and parent not in nodes and not self._add_parents(parent):
            return
        if key not in nodes and name.startswith(DOUBLE_WHITEOUT_PREFIX):
            return
        if parent:
            self.parents.add(parent)
        nodes[key] = info

    def _add_parents(self, path: str) -> bool:
        key = ""
        for name in path.split("/"):
            child = _join(key, name)
            if child not in self.nodes:
                if name.startswith(DOUBLE_WHITEOUT_PREFIX):
                    return False
                self.nodes[child] = _IMPLICIT
            if key:
                self.parents.add(key)
            key = child
        return True

    def post_order(self) -> list[str]:
        """Return the nodes in the order of dive's VisitDepthChildFirst.

        Children come before their parent and siblings go by name, compared
        as bytes like Go's sort.Strings.
        """
        keys = list(self.nodes)
        if _CONTROL.search("".join(keys)):
            return sorted(keys, key=_tuple_key)
        return sorted(keys, key=_bytes_key)


# Component separators used by _bytes_key; names containing them fall back
# to the slower _tuple_key.
_CONTROL = re.compile("[\x00-\x02]")


def _bytes_key(key: str) -> bytes:
    # dive compares the tar's own bytes, so escaped names are encoded back.
    # "\x01" between names sorts a child before any longer sibling name, and
    # "\x02" at the end sorts a node after its own children.
    return encode_name(key).replace(b"/", b"\x01") + b"\x02"


def _tuple_key(key: str) -> tuple[tuple[int, bytes], ...]:
    return tuple((0, encode_name(name)) for name in key.split("/")) + ((1, b""),)


class _StackedTree:
    """The tree dive's StackTreeRange builds, kept current one layer at a time.

    ``info`` maps a node's path to ``[size, is_dir, subtree size]``; the root
    is ``""``. ``children`` lists each parent's child paths.
    """

    def __init__(self) -> None:
        self.info: dict[str, list[int]] = {"": [0, 0, 0]}
        self.children: dict[str, set[str]] = {}

    @classmethod
    def copy_of(cls, tree: _LayerTree) -> _StackedTree:
        stacked = cls()
        for key, (size, is_dir) in tree.nodes.items():
            stacked.add(key, size, is_dir)
        return stacked

    def deleted_size(self, path: str) -> int | None:
        """Return what a whiteout of ``path`` weighs, or None if it is absent.

        A directory weighs its whole subtree, itself included; anything else
        weighs 0, whatever its size.
        """
        node = self.info.get(path.rstrip("/"))
        if node is None:
            return None
        return node[2] if node[1] else 0

    def stack(self, tree: _LayerTree, order: Iterable[str]) -> None:
        """Apply a layer like FileTree.Stack: whiteouts remove, others add."""
        for key in order:
            parent, _, name = key.rpartition("/")
            if name.startswith(WHITEOUT_PREFIX):
                self.remove(_join(parent, name[len(WHITEOUT_PREFIX) :]).rstrip("/"))
            else:
                size, is_dir = tree.nodes[key]
                self.add(key, size, is_dir)

    def add(self, key: str, size: int, is_dir: bool) -> None:
        """Set a node's header like FileTree.AddPath, keeping its children."""
        node = self.info.get(key)
        if node is None:
            if not self._create(key):
                return
            node = self.info[key]
        delta = size - node[0]
        node[0] = size
        node[1] = is_dir
        if delta:
            self._propagate(key, delta)

    def _create(self, key: str) -> bool:
        parent, _, name = key.rpartition("/")
        if parent in self.info:
            if name.startswith(DOUBLE_WHITEOUT_PREFIX):
                return False
            self.info[key] = [0, 0, 0]
            self.children.setdefault(parent, set()).add(key)
            return True
        missing: list[str] = []
        cursor = key
        while cursor not in self.info:
            missing.append(cursor)
            cursor = cursor.rpartition("/")[0]
        for path in reversed(missing):
            parent, _, name = path.rpartition("/")
            if name.startswith(DOUBLE_WHITEOUT_PREFIX):
                return False
            self.info[path] = [0, 0, 0]
            self.children.setdefault(parent, set()).add(path)
        return True

    def remove(self, key: str) -> None:
        """Remove a node and its subtree; a missing path is ignored, as dive does."""
        node = self.info.get(key)
        if node is None or not key:
            return
        self._propagate(key, -node[2])
        parent = key.rpartition("/")[0]
        self.children[parent].discard(key)
        pending = [key]
        while pending:
            path = pending.pop()
            del self.info[path]
            pending.extend(self.children.pop(path, ()))

    def _propagate(self, key: str, delta: int) -> None:
        info = self.info
        info[key][2] += delta
        while key:
            key = key.rpartition("/")[0]
            info[key][2] += delta
