"""The comparison view's queries over a file diff of ``layerlab.compare``.

A diff has the columns of :func:`layerlab._compare.filesystem_diff`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._compare import largest_change_first


def select_diff(
    diff: pd.DataFrame, *, changes: Any, directory: str = ""
) -> pd.DataFrame:
    """Return the rows of ``diff`` with these changes, at or below ``directory``."""
    keep = diff["change"].isin(list(changes))
    directory = directory.strip("/")
    if directory:
        paths = diff["path"].astype(str)
        keep &= (paths == directory) | paths.str.startswith(directory + "/")
    return diff[keep]


def directory_deltas(
    diff: pd.DataFrame, *, directory: str = "", top: int = 15
) -> pd.DataFrame:
    """Return the size change of each child directory of ``directory``.

    Columns: ``directory``, ``size_before``, ``size_after``, ``size_change``,
    ``paths`` (changed paths below it). The ``top`` largest changes by
    absolute value come first. Files directly in ``directory`` are summed
    as ``directory`` itself. Hardlinked content counts once where ``diff``
    comes from :func:`~layerlab._compare.counted_diff_sizes`.
    """
    prefix = directory.strip("/")
    start = len(prefix) + 1 if prefix else 0
    names = [_child(path[start:], prefix) for path in diff["path"].astype(str)]
    table = pd.DataFrame(
        {
            "directory": names,
            "size_before": diff["size_before"].to_numpy(),
            "size_after": diff["size_after"].to_numpy(),
            "paths": (diff["change"] != "unchanged").to_numpy().astype(np.int64),
        }
    )
    grouped = table.groupby("directory", as_index=False).sum()
    grouped["size_change"] = grouped["size_after"] - grouped["size_before"]
    grouped = grouped[(grouped["size_change"] != 0) | (grouped["paths"] > 0)]
    return largest_change_first(grouped).head(top)


def _child(rest: str, prefix: str) -> str:
    """Return the child directory of ``prefix`` that ``rest`` lies in."""
    if "/" not in rest:
        return prefix
    child = rest.partition("/")[0]
    return f"{prefix}/{child}" if prefix else child
