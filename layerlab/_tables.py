"""Derived tables: ``layers`` and ``waste``, computed from ``files``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import _schema

if TYPE_CHECKING:
    from ._image import Image, _LayerInfo


def waste_table(files: pd.DataFrame) -> pd.DataFrame:
    """Return the stored versions the final filesystem cannot show, largest first."""
    wasted = files[files["waste_reason"].notna() & (files["size"] > 0)]
    table = wasted.rename(columns={"waste_reason": "reason"})
    table = table.sort_values(
        ["size", "layer", "path"], ascending=[False, True, True], ignore_index=True
    )
    return _schema.conform(table, _schema.WASTE_COLUMNS)


def layers_table(image: Image, infos: list[_LayerInfo]) -> pd.DataFrame:
    """Return one row per layer with its sizes, history and change counts."""
    files = image.files
    count = len(infos)
    by_layer = files.groupby("layer", observed=True)
    change = files["change"]
    diff_ids = image.config.get("rootfs", {}).get("diff_ids") or [None] * count
    descriptors = image._source.layers

    table = pd.DataFrame(
        {
            "layer": np.arange(count, dtype=np.int32),
            "diff_id": diff_ids,
            "digest": [
                _digest(info, descriptors[i].digest, diff_ids[i])
                for i, info in enumerate(infos)
            ],
            "media_type": [descriptor.media_type for descriptor in descriptors],
            "compression": [info.compression for info in infos],
            "compressed_size": [info.blob_size for info in infos],
            "uncompressed_size": [info.uncompressed_size for info in infos],
        }
    )
    table["content_size"] = _per_layer(by_layer["tar_size"].sum(), count)
    table["entries"] = _per_layer(by_layer.size(), count)
    table["added"] = _count(files, change == "added", count)
    table["modified"] = _count(files, change.isin(["modified", "metadata"]), count)
    table["deleted"] = _count(files, change == "deleted", count)
    table["added_bytes"] = _bytes(files, change == "added", count)
    table["modified_bytes"] = _bytes(
        files, change.isin(["modified", "metadata"]), count
    )
    table["hidden_bytes"] = _bytes(files, files["waste_reason"].notna(), count)
    table["cumulative_size"] = table["content_size"].cumsum()
    table["cumulative_compressed_size"] = table["compressed_size"].cumsum()
    table = _with_history(table, image.history)
    return _schema.conform(table, _schema.LAYERS_COLUMNS)


def _digest(info: _LayerInfo, declared: str | None, diff_id: Any) -> str | None:
    if declared:
        return declared
    if info.compression == "none" and diff_id:
        return str(diff_id)
    return info.digest


def _per_layer(series: pd.Series, count: int) -> np.ndarray:
    return series.reindex(range(count), fill_value=0).to_numpy(dtype=np.int64)


def _count(files: pd.DataFrame, mask: pd.Series, count: int) -> np.ndarray:
    return _per_layer(files.loc[mask, "layer"].value_counts(), count)


def _bytes(files: pd.DataFrame, mask: pd.Series, count: int) -> np.ndarray:
    return _per_layer(files.loc[mask].groupby("layer")["size"].sum(), count)


def _with_history(table: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    made = history[history["layer"].notna()].set_index("layer")
    columns = ["history_index", "created_by", "instruction", "created", "comment"]
    matched = made.reindex(table["layer"])[columns].reset_index(drop=True)
    for name in columns:
        table[name] = matched[name].to_numpy()
    return table
