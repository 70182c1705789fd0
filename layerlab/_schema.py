"""Column names, dtypes and meanings of layerlab's tables.

This module does no I/O. Every table the library builds goes through
:func:`conform` so that columns, order and dtypes are the same whatever the
image source. It is public as ``layerlab.columns``: ``help()`` and ``repr()``
of it list every table's columns, and :func:`describe` returns one table's
columns as a DataFrame.
"""

from __future__ import annotations

import sys
import textwrap
import types
from typing import NamedTuple

import pandas as pd

_KIND_MEANINGS = {
    "file": "regular file",
    "dir": "directory",
    "symlink": "symbolic link",
    "hardlink": "hard link; link_target is the path it links to",
    "char": "character device",
    "block": "block device",
    "fifo": "named pipe",
    "whiteout": "a .wh.NAME marker; its path is the deleted path",
    "opaque": "a .wh..wh..opq marker; its path is the directory it makes opaque",
}

KINDS = tuple(_KIND_MEANINGS)
"""Entry kinds, the categories of the ``kind`` columns."""

_CHANGE_MEANINGS = {
    "added": "the path did not exist below",
    "modified": "the path existed with other content or another kind",
    "metadata": "same kind and content, other mode, owner or link target",
    "unchanged": "identical to what was below (content, mode, owner)",
    "deleted": "a whiteout or opaque marker that hid something",
    "noop": "a whiteout or opaque marker that hid nothing",
}

CHANGES = tuple(_CHANGE_MEANINGS)
"""Changes an entry makes to the filesystem below it, the categories of
``Image.files.change``."""

_WASTE_REASON_MEANINGS = {
    "overwritten": "a later entry at the same path with other content, or of "
    "another kind (including the same path twice in one layer)",
    "deleted": "removed by a whiteout, an opaque directory, or the removal or "
    "replacement of a parent directory",
    "identical": "a later entry rewrote it with identical content and metadata",
    "metadata": "a later entry rewrote it with identical content but another "
    "mode or owner (a chmod or chown that copies the whole file)",
}

WASTE_REASONS = tuple(_WASTE_REASON_MEANINGS)
"""Why a stored version is not visible in the final filesystem: the
categories of ``Image.files.waste_reason`` and ``Image.waste.reason``."""

_KIND = pd.CategoricalDtype(KINDS)
_CHANGE = pd.CategoricalDtype(CHANGES)
_REASON = pd.CategoricalDtype(WASTE_REASONS)

ENTRY_COLUMNS: dict[str, object] = {
    "path": "string",
    "kind": _KIND,
    "size": "int64",
    "tar_size": "int64",
    "mode": "int64",
    "uid": "int64",
    "gid": "int64",
    "mtime": "int64",
    "link_target": "string",
    "hash": "string",
    "order": "int32",
}
"""Columns of one parsed layer, before the merge (what the cache stores)."""

_ENTRY_DESCRIPTIONS = {
    "path": "path relative to the root, with no leading ./ or / and no trailing "
    "/; .. components are resolved inside the root. A byte that is not part "
    "of valid UTF-8 is written as U+FFFD, x and two hex digits (caf\\xe9 is "
    "caf\ufffdxe9), and a U+FFFD of the name itself is doubled, so no two "
    "names share a spelling and squash writes the original bytes back",
    "kind": "entry kind, one of KINDS",
    "size": "content bytes stored in the layer: the file size for regular "
    "files, 0 for every other kind (a hardlink shares its target's bytes)",
    "tar_size": "the size field of the tar header, as dive counts it (a "
    "hardlink header may carry a size although no data follows it)",
    "mode": "permission bits, including setuid, setgid and sticky",
    "uid": "owner's user id",
    "gid": "owner's group id",
    "mtime": "modification time in seconds since the epoch, truncated",
    "link_target": "symlink target as written, or the normalised path a "
    "hardlink points to, with bytes escaped as in path; missing for other "
    "kinds",
    "hash": "xxh3-128 of the content as 32 hex digits for regular files; "
    "missing for other kinds and when hashing is turned off",
    "order": "position of the entry in the layer's tar stream",
}

FILES_COLUMNS: dict[str, object] = {
    "layer": "int32",
    **ENTRY_COLUMNS,
    "change": _CHANGE,
    "visible": "bool",
    "hidden_by": "Int32",
    "waste_reason": _REASON,
}
"""Columns of ``Image.files``: one row per tar entry per layer."""

_FILES_DESCRIPTIONS = {
    "layer": "index of the filesystem layer (0 is the lowest)",
    **_ENTRY_DESCRIPTIONS,
    "change": "what the entry does to the filesystem below it, one of CHANGES",
    "visible": "whether this version is what the final filesystem shows; "
    "markers (whiteout, opaque) are never visible",
    "hidden_by": "the layer whose entry hid this version; missing when visible",
    "waste_reason": "why this version is not visible, one of WASTE_REASONS; "
    "missing when visible and for markers",
}

FILESYSTEM_COLUMNS: dict[str, object] = {
    "path": "string",
    "kind": _KIND,
    "size": "int64",
    "mode": "int64",
    "uid": "int64",
    "gid": "int64",
    "mtime": "int64",
    "link_target": "string",
    "hash": "string",
    "layer": "int32",
}
"""Columns of ``Image.filesystem``: one row per visible path of the merged
filesystem."""

_FILESYSTEM_DESCRIPTIONS = {
    **_ENTRY_DESCRIPTIONS,
    "size": "content bytes; for a hardlink, those of the content it shares",
    "link_target": "symlink target as written, or for a hardlink the path it "
    "was linked to in its layer; missing for other kinds",
    "hash": "xxh3-128 of the content as 32 hex digits for regular files and "
    "hardlinks to them; missing for other kinds and when hashing is turned off",
    "layer": "the layer this version comes from",
}

WASTE_COLUMNS: dict[str, object] = {
    "path": "string",
    "layer": "int32",
    "kind": _KIND,
    "size": "int64",
    "reason": _REASON,
    "hidden_by": "Int32",
}
"""Columns of ``Image.waste``: one row per stored version with bytes that
the final filesystem cannot show (``size`` > 0), largest first."""

_WASTE_DESCRIPTIONS = {
    "path": _ENTRY_DESCRIPTIONS["path"],
    "layer": "the layer that stores this version",
    "kind": _ENTRY_DESCRIPTIONS["kind"],
    "size": "content bytes this version stores, always above 0",
    "reason": "why the final filesystem cannot show it, one of WASTE_REASONS",
    "hidden_by": "the layer whose entry hid this version",
}

LAYERS_COLUMNS: dict[str, object] = {
    "layer": "int32",
    "diff_id": "string",
    "digest": "string",
    "media_type": "string",
    "compression": "string",
    "compressed_size": "int64",
    "uncompressed_size": "int64",
    "content_size": "int64",
    "history_index": "Int32",
    "created_by": "string",
    "instruction": "string",
    "created": "string",
    "comment": "string",
    "entries": "int64",
    "added": "int64",
    "modified": "int64",
    "deleted": "int64",
    "added_bytes": "int64",
    "modified_bytes": "int64",
    "hidden_bytes": "int64",
    "cumulative_size": "int64",
    "cumulative_compressed_size": "int64",
}
"""Columns of ``Image.layers``: one row per filesystem layer."""

_HISTORY_FIELDS = {
    "created_by": "the history entry's command",
    "instruction": "the Dockerfile keyword (RUN, COPY, ...), derived from created_by",
    "created": "the history entry's creation time as written (RFC 3339)",
    "comment": "the history entry's comment",
}

_LAYERS_DESCRIPTIONS = {
    "layer": "index of the filesystem layer (0 is the lowest)",
    "diff_id": "digest of the uncompressed tar",
    "digest": "digest of the blob as stored (compressed or not)",
    "media_type": "media type the manifest declares for the blob",
    "compression": "gzip, zstd or none, detected from the bytes",
    "compressed_size": "bytes of the blob",
    "uncompressed_size": "bytes of the tar stream",
    "content_size": "sum of the tar headers' size fields, which is what dive "
    "calls a layer's size",
    "history_index": "position in the config's history of the instruction "
    "that made this layer; missing when the image has no usable history",
    **_HISTORY_FIELDS,
    "entries": "number of tar entries",
    "added": "entries whose change is added",
    "modified": "entries whose change is modified or metadata",
    "deleted": "entries whose change is deleted",
    "added_bytes": "stored bytes of the added entries",
    "modified_bytes": "stored bytes of the modified entries",
    "hidden_bytes": "stored bytes of this layer that the final filesystem cannot show",
    "cumulative_size": "running total of content_size",
    "cumulative_compressed_size": "running total of compressed_size",
}

HISTORY_COLUMNS: dict[str, object] = {
    "history_index": "int32",
    "created_by": "string",
    "instruction": "string",
    "created": "string",
    "comment": "string",
    "empty_layer": "bool",
    "layer": "Int32",
}
"""Columns of ``Image.history``: one row per config history entry, with the
layer it made."""

_HISTORY_DESCRIPTIONS = {
    "history_index": "position of the entry in the config's history",
    **_HISTORY_FIELDS,
    "empty_layer": "whether the entry made no layer (ENV, WORKDIR, CMD, ...)",
    "layer": "the layer the entry made; missing for empty_layer entries and "
    "for entries that cannot be matched to a layer",
}


class _Table(NamedTuple):
    """One table's documentation: where it is, what a row is, its columns."""

    attribute: str
    rows: str
    columns: dict[str, object]
    descriptions: dict[str, str]


TABLES = {
    "layers": _Table(
        "Image.layers",
        "one row per filesystem layer",
        LAYERS_COLUMNS,
        _LAYERS_DESCRIPTIONS,
    ),
    "files": _Table(
        "Image.files",
        "one row per tar entry per layer",
        FILES_COLUMNS,
        _FILES_DESCRIPTIONS,
    ),
    "filesystem": _Table(
        "Image.filesystem",
        "one row per visible path of the merged filesystem",
        FILESYSTEM_COLUMNS,
        _FILESYSTEM_DESCRIPTIONS,
    ),
    "waste": _Table(
        "Image.waste",
        "one row per stored version with bytes that the final filesystem "
        "cannot show, largest first",
        WASTE_COLUMNS,
        _WASTE_DESCRIPTIONS,
    ),
    "history": _Table(
        "Image.history",
        "one row per config history entry",
        HISTORY_COLUMNS,
        _HISTORY_DESCRIPTIONS,
    ),
    "entries": _Table(
        "Image.entries(i)",
        "one row per tar entry of layer i, before the merge",
        ENTRY_COLUMNS,
        _ENTRY_DESCRIPTIONS,
    ),
}
"""The documentation of each table, by name."""


def conform(df: pd.DataFrame, columns: dict[str, object]) -> pd.DataFrame:
    """Return ``df`` with exactly ``columns``, in that order and with those dtypes."""
    missing = [name for name in columns if name not in df.columns]
    for name in missing:
        df[name] = pd.Series(pd.NA, index=df.index, dtype="object")
    df = df[list(columns)]
    return df.astype(columns)  # type: ignore[arg-type]


def empty(columns: dict[str, object]) -> pd.DataFrame:
    """Return an empty table with ``columns``."""
    return conform(pd.DataFrame({name: [] for name in columns}), columns)


def describe(table: str) -> pd.DataFrame:
    """Return the columns of ``table`` (a key of :data:`TABLES`) with their
    dtypes and meanings, one row per column."""
    if table not in TABLES:
        raise KeyError(f"unknown table {table!r}; the tables are {', '.join(TABLES)}")
    columns, descriptions = TABLES[table].columns, TABLES[table].descriptions
    return pd.DataFrame(
        {
            "column": list(columns),
            "dtype": [_dtype_name(dtype) for dtype in columns.values()],
            "description": [descriptions[name] for name in columns],
        }
    )


def _dtype_name(dtype: object) -> str:
    return "category" if isinstance(dtype, pd.CategoricalDtype) else str(dtype)


# help() indents the module docstring by 4 spaces, so lines stay within 88.
_TEXT_WIDTH = 84


def _table_text(name: str, table: _Table) -> str:
    width = max(len(column) for column in table.columns)
    header = f"{name} ({table.attribute}): {table.rows}"
    lines = [textwrap.fill(header, width=_TEXT_WIDTH, subsequent_indent="  ")]
    for column, dtype in table.columns.items():
        head = f"    {column:<{width}}  {_dtype_name(dtype):<8}  "
        lines.append(_wrap(table.descriptions[column], head))
    return "\n".join(lines)


def _values_text(name: str, meanings: dict[str, str]) -> str:
    width = max(len(value) for value in meanings)
    lines = [f"{name}:"]
    for value, meaning in meanings.items():
        lines.append(_wrap(meaning, f"    {value:<{width}}  "))
    return "\n".join(lines)


def _wrap(text: str, head: str) -> str:
    return textwrap.fill(
        text,
        width=_TEXT_WIDTH,
        initial_indent=head,
        subsequent_indent=" " * len(head),
    )


def _reference_text() -> str:
    """Render every table's columns and every category's values as text."""
    blocks = [_table_text(name, table) for name, table in TABLES.items()]
    blocks.append(_values_text("KINDS", _KIND_MEANINGS))
    blocks.append(_values_text("CHANGES", _CHANGE_MEANINGS))
    blocks.append(_values_text("WASTE_REASONS", _WASTE_REASON_MEANINGS))
    return "\n\n".join(blocks)


class _ColumnsModule(types.ModuleType):
    # repr() of layerlab.columns, which a notebook shows when the module is
    # the value of a cell, lists the tables in place of the module's path.
    def __repr__(self) -> str:
        return f"layerlab.columns: the columns of each table\n\n{_reference_text()}"


if __doc__ is not None:  # python -OO strips docstrings
    __doc__ += "\nTables and columns\n------------------\n\n" + _reference_text()
sys.modules[__name__].__class__ = _ColumnsModule
