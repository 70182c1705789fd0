"""Column names, dtypes and meanings of layerlab's tables.

This module does no I/O. Every table the library builds goes through
:func:`conform` so that columns, order and dtypes are the same whatever the
image source.
"""

from __future__ import annotations

import pandas as pd

KINDS = (
    "file",
    "dir",
    "symlink",
    "hardlink",
    "char",
    "block",
    "fifo",
    "whiteout",
    "opaque",
)
"""Entry kinds. ``whiteout`` is a ``.wh.NAME`` marker (its path is the deleted
path); ``opaque`` is a ``.wh..wh..opq`` marker (its path is the directory)."""

CHANGES = ("added", "modified", "metadata", "unchanged", "deleted", "noop")
"""What an entry does to the filesystem below it.

- ``added``: the path did not exist below.
- ``modified``: the path existed with other content or another kind.
- ``metadata``: same kind and content, other mode, owner or link target.
- ``unchanged``: identical to what was below (content, mode, owner).
- ``deleted``: a whiteout or opaque marker that hid something.
- ``noop``: a whiteout or opaque marker that hid nothing.
"""

WASTE_REASONS = ("overwritten", "deleted", "identical", "metadata")
"""Why a stored version is not visible in the final filesystem.

- ``overwritten``: a later entry at the same path with other content, or of
  another kind (including the same path twice in one layer).
- ``deleted``: removed by a whiteout, an opaque directory, or the removal or
  replacement of a parent directory.
- ``identical``: a later entry rewrote it with identical content and metadata.
- ``metadata``: a later entry rewrote it with identical content but another
  mode or owner (a ``chmod`` or ``chown`` that copies the whole file).
"""

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
"""Columns of one parsed layer, before the merge (what the cache stores).

- ``path``: normalised, relative to the root, no leading ``./`` or ``/``, no
  trailing ``/``; ``..`` components resolved inside the root.
- ``size``: content bytes stored in the layer: the file size for regular
  files, 0 for every other kind (a hardlink shares its target's bytes).
- ``tar_size``: the size field of the tar header, as dive counts it (a
  hardlink header may carry a size although no data follows it).
- ``mode``: permission bits including setuid, setgid and sticky.
- ``mtime``: seconds since the epoch, truncated.
- ``link_target``: symlink target as written, or the normalised path a
  hardlink points to; missing for other kinds.
- ``hash``: xxh3-128 of the content as 32 hex digits for regular files;
  missing for other kinds and when hashing is turned off.
- ``order``: position of the entry in the layer's tar stream.
"""

FILES_COLUMNS: dict[str, object] = {
    "layer": "int32",
    **ENTRY_COLUMNS,
    "change": _CHANGE,
    "visible": "bool",
    "hidden_by": "Int32",
    "waste_reason": _REASON,
}
"""Columns of ``Image.files``: one row per tar entry per layer.

- ``layer``: index of the filesystem layer (0 is the lowest).
- ``change``: see :data:`CHANGES`.
- ``visible``: whether this version is what the final filesystem shows.
  Markers (whiteout, opaque) are never visible.
- ``hidden_by``: the layer whose entry hid this version; missing when visible.
- ``waste_reason``: see :data:`WASTE_REASONS`; missing when visible and for
  markers.
"""

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
filesystem. For a hardlink, ``size`` and ``hash`` are those of the content it
shares, and ``link_target`` the path it was linked to in its layer."""

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
"""Columns of ``Image.layers``: one row per filesystem layer.

- ``digest``: digest of the blob as stored (compressed or not); ``diff_id``:
  digest of the uncompressed tar.
- ``compression``: ``gzip``, ``zstd`` or ``none``, detected from the bytes.
- ``compressed_size``: bytes of the blob; ``uncompressed_size``: bytes of the
  tar stream; ``content_size``: sum of the tar headers' size fields, which is
  what dive calls a layer's size.
- ``history_index``: position in the config's ``history`` of the instruction
  that made this layer; missing when the image has no usable history.
- ``instruction``: the Dockerfile keyword (``RUN``, ``COPY``, ...), derived
  from ``created_by``.
- ``added``, ``modified``, ``deleted``: entry counts by change (``modified``
  includes ``metadata``); ``added_bytes``, ``modified_bytes``: their stored
  bytes.
- ``hidden_bytes``: stored bytes of this layer that the final filesystem
  cannot show.
- ``cumulative_size``, ``cumulative_compressed_size``: running totals of
  ``content_size`` and ``compressed_size``.
"""

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
layer it made (missing for ``empty_layer`` entries)."""


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
