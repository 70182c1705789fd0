"""On-disk cache of parsed layers, keyed by diff_id.

A layer's content never changes for a given diff_id, so its entry table can
be reused by every image that shares the layer. Tables are stored as Arrow IPC
(Feather) files, which read back faster and with less memory than Parquet,
under the user cache directory (``LAYERLAB_CACHE_DIR`` overrides it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

import pandas as pd
import platformdirs
import pyarrow as pa
from pyarrow import feather

from . import _schema

# Bump when the entry columns or their meaning change, so old files are ignored.
FORMAT_VERSION = 3

logger = logging.getLogger("layerlab")


@dataclass
class CachedLayer:
    """A parsed layer as the cache returns it."""

    entries: pd.DataFrame
    uncompressed_size: int
    escaped_paths: list[str]


# Arrow's default allocator (mimalloc) keeps freed pages, which doubled the
# peak memory of reading a cached image; the system allocator returns them.
_POOL = pa.system_memory_pool()


def _read_table(path: str) -> pa.Table:
    with pa.memory_map(path) as source:
        return pa.ipc.open_file(source, memory_pool=_POOL).read_all()


def _read(path: str) -> pd.DataFrame:
    return _read_table(path).to_pandas(memory_pool=_POOL)


def cache_root() -> str:
    """Return the directory of the cache."""
    base = os.environ.get("LAYERLAB_CACHE_DIR") or platformdirs.user_cache_dir(
        "layerlab"
    )
    return os.path.join(base, f"layers-v{FORMAT_VERSION}")


def _path(diff_id: str, hashed: bool) -> str:
    algorithm, _, encoded = diff_id.partition(":")
    suffix = "hashed" if hashed else "plain"
    return os.path.join(cache_root(), f"{algorithm}-{encoded}-{suffix}.arrow")


def load(diff_id: str, *, hash_content: bool) -> CachedLayer | None:
    """Return the cached layer, or None when it is not cached."""
    candidates = [_path(diff_id, True)]
    if not hash_content:
        candidates.append(_path(diff_id, False))
    for path in candidates:
        if not os.path.exists(path):
            continue
        try:
            table = _read_table(path)
        except (OSError, pa.ArrowException) as error:
            logger.warning("ignoring unreadable cache file %s: %s", path, error)
            continue
        meta = json.loads((table.schema.metadata or {}).get(b"layerlab", b"{}"))
        entries = _schema.conform(
            table.to_pandas(memory_pool=_POOL), _schema.ENTRY_COLUMNS
        )
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
        feather.write_feather(table, temporary, compression="zstd")
        os.replace(temporary, path)
    except (OSError, pa.ArrowException) as error:
        logger.warning("could not write layer cache %s: %s", path, error)


def image_key(parts: list[str]) -> str:
    """Return the cache key of a whole image from what identifies its content."""
    digest = hashlib.sha256()
    for part in [f"v{FORMAT_VERSION}", *parts]:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _image_dir(key: str) -> str:
    return os.path.join(cache_root(), "images", key)


def load_image_tables(key: str, names: list[str]) -> dict[str, Any] | None:
    """Return the cached tables ``names`` and metadata of an image, or None."""
    directory = _image_dir(key)
    try:
        with open(os.path.join(directory, "meta.json"), encoding="utf-8") as handle:
            found: dict[str, Any] = {"meta": json.load(handle)}
        for name in names:
            found[name] = _read(os.path.join(directory, f"{name}.arrow"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, pa.ArrowException) as error:
        logger.warning("ignoring unreadable image cache %s: %s", directory, error)
        return None
    return found


def store_image_tables(
    key: str, tables: dict[str, pd.DataFrame], meta: dict[str, Any]
) -> None:
    """Write an image's tables and metadata to the cache; a failure is logged."""
    directory = _image_dir(key)
    try:
        os.makedirs(os.path.dirname(directory), exist_ok=True)
        staging = tempfile.mkdtemp(dir=os.path.dirname(directory), suffix=".tmp")
        for name, table in tables.items():
            feather.write_feather(
                pa.Table.from_pandas(table, preserve_index=False),
                os.path.join(staging, f"{name}.arrow"),
                compression="zstd",
            )
        with open(os.path.join(staging, "meta.json"), "w", encoding="utf-8") as handle:
            json.dump(meta, handle)
        if os.path.isdir(directory):
            shutil.rmtree(directory, ignore_errors=True)
        os.replace(staging, directory)
    except (OSError, pa.ArrowException) as error:
        logger.warning("could not write image cache %s: %s", directory, error)
