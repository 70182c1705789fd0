"""On-disk cache of parsed layers, keyed by diff_id.

A layer's content never changes for a given diff_id, so its entry table can
be reused by every image that shares the layer. Tables are stored as Parquet
under the user cache directory (``LAYERLAB_CACHE_DIR`` overrides it).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass

import pandas as pd
import platformdirs
import pyarrow as pa
import pyarrow.parquet as pq

from . import _schema

# Bump when the entry columns or their meaning change, so old files are ignored.
FORMAT_VERSION = 1

logger = logging.getLogger("layerlab")


@dataclass
class CachedLayer:
    """A parsed layer as the cache returns it."""

    entries: pd.DataFrame
    uncompressed_size: int
    escaped_paths: list[str]


def cache_root() -> str:
    """Return the directory that holds cached layers."""
    base = os.environ.get("LAYERLAB_CACHE_DIR") or platformdirs.user_cache_dir(
        "layerlab"
    )
    return os.path.join(base, f"layers-v{FORMAT_VERSION}")


def _path(diff_id: str, hashed: bool) -> str:
    algorithm, _, encoded = diff_id.partition(":")
    suffix = "hashed" if hashed else "plain"
    return os.path.join(cache_root(), f"{algorithm}-{encoded}-{suffix}.parquet")


def load(diff_id: str, *, hash_content: bool) -> CachedLayer | None:
    """Return the cached layer, or None when it is not cached."""
    candidates = [_path(diff_id, True)]
    if not hash_content:
        candidates.append(_path(diff_id, False))
    for path in candidates:
        if not os.path.exists(path):
            continue
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as error:
            logger.warning("ignoring unreadable cache file %s: %s", path, error)
            continue
        meta = json.loads((table.schema.metadata or {}).get(b"layerlab", b"{}"))
        entries = _schema.conform(table.to_pandas(), _schema.ENTRY_COLUMNS)
        return CachedLayer(
            entries=entries,
            uncompressed_size=int(meta.get("uncompressed_size", 0)),
            escaped_paths=list(meta.get("escaped_paths", [])),
        )
    return None


def store(
    diff_id: str,
    entries: pd.DataFrame,
    *,
    hash_content: bool,
    uncompressed_size: int,
    escaped_paths: list[str],
) -> None:
    """Write a parsed layer to the cache; a failure is logged, not raised."""
    path = _path(diff_id, hash_content)
    meta = {"uncompressed_size": uncompressed_size, "escaped_paths": escaped_paths}
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        table = pa.Table.from_pandas(entries, preserve_index=False)
        schema_meta = dict(table.schema.metadata or {})
        schema_meta[b"layerlab"] = json.dumps(meta).encode()
        table = table.replace_schema_metadata(schema_meta)
        # Write beside the target and rename, so readers never see half a file.
        handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
        os.close(handle)
        pq.write_table(table, temporary, compression="zstd")
        os.replace(temporary, path)
    except (OSError, pa.ArrowException) as error:
        logger.warning("could not write layer cache %s: %s", path, error)
