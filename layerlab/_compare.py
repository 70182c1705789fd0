"""Compare two to ten images: sizes, shared layers, and final-filesystem diffs.

Every image is compared with the first one (the baseline): a pull of a later
image costs only the layers the baseline does not already have, and its
final filesystem differs from the baseline's path by path.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ._errors import OptionError
from ._format import OFFLINE_CONFIG, html_text, human_bytes
from ._pull import layer_keys

MAX_IMAGES = 10

DIFF_CHANGES = ("added", "removed", "modified", "metadata", "unchanged")
"""Kinds of difference of a final-filesystem path from the baseline's.

- ``added`` / ``removed``: the path exists on one side only.
- ``modified``: another kind, other content (by hash, or by size when a hash
  is missing) or another symlink target.
- ``metadata``: the same content, another mode or owner.
- ``unchanged``: the same kind, content, mode and owner. Modification times
  are not compared, since every build changes them.

A hardlink counts as a regular file with the content it shares: which path
of a hardlinked group a tar stores as the file depends on its order.
"""

DIFF_COLUMNS = (
    "path",
    "change",
    "kind_before",
    "kind_after",
    "size_before",
    "size_after",
    "size_change",
    "mode_before",
    "mode_after",
    "kind_changed",
    "content_changed",
    "mode_changed",
    "owner_changed",
)
"""Columns of :func:`filesystem_diff`.

Sizes are content bytes, 0 on the side where the path is missing;
``size_change`` is after minus before. Modes are permission bits, missing
on the side where the path is missing. The four flags mark what differs on
paths present on both sides.
"""

_DIFF_CATEGORY = pd.CategoricalDtype(DIFF_CHANGES)


@dataclass
class Comparison:
    """Two or more images side by side.

    Attributes:
        images: the compared images, the baseline first.
        labels: a short unique label per image.
        summary: one row per image: sizes, layers, paths, reclaimable bytes,
            and the counts of paths added, removed, modified and changed in
            metadata against the baseline.
        layers: one row per distinct layer (by diff_id) with its sizes, a
            boolean column per label saying whether that image has it, and
            ``images``, the number of images that have it.
        pull: one row per image: the layers and compressed bytes it needs,
            those no other compared image has, and what remains to pull when
            the baseline's layers are present (matched by chain ID, as
            Docker Engine's layer store does).
        diffs: per later label, the final-filesystem diff against the
            baseline (columns :data:`DIFF_COLUMNS`), changed paths first.
        directories: per later label, content bytes per directory before
            and after, at the first two levels, largest change first.
    """

    images: list[Any]
    labels: list[str]
    summary: pd.DataFrame
    layers: pd.DataFrame
    pull: pd.DataFrame
    diffs: dict[str, pd.DataFrame] = field(default_factory=dict)
    directories: dict[str, pd.DataFrame] = field(default_factory=dict)
    _owned: list[Any] = field(default_factory=list, repr=False)

    def net_change(self, label: str) -> int:
        """Return how many content bytes the final filesystem of ``label`` adds.

        The change is against the baseline's final filesystem, negative when
        the image is smaller, with each hardlinked file counted once.
        """
        if label not in self.diffs:
            raise OptionError(
                f"no image labelled {label!r} after the baseline; "
                f"the labels are {', '.join(self.labels[1:])}"
            )
        image = self.images[self.labels.index(label)]
        counted = counted_diff_sizes(
            self.diffs[label], self.images[0].filesystem, image.filesystem
        )
        return int(counted["size_change"].sum())

    def close(self) -> None:
        """Close the images that :func:`compare` opened from references."""
        for image in self._owned:
            image.close()
        self._owned.clear()

    def __enter__(self) -> Comparison:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _repr_html_(self) -> str:
        return comparison_html(self)


def compare(*images: Any, labels: Sequence[str] | None = None) -> Comparison:
    """Compare two to ten images (Image objects or references).

    The first image is the baseline that the others are compared with.
    Images opened here from references are closed by
    :meth:`Comparison.close` (or a ``with`` block).
    """
    from ._image import Image, open_image

    if len(images) == 1 and isinstance(images[0], (list, tuple)):
        images = tuple(images[0])
    if not 2 <= len(images) <= MAX_IMAGES:
        raise OptionError(f"compare takes 2 to {MAX_IMAGES} images, got {len(images)}")
    owned: list[Any] = []
    opened: list[Any] = []
    try:
        for item in images:
            if isinstance(item, Image):
                opened.append(item)
            else:
                owned.append(open_image(os.fspath(item)))
                opened.append(owned[-1])
        names = list(labels) if labels is not None else _labels(opened)
        if len(names) != len(opened) or len(set(names)) != len(names):
            raise OptionError("labels must be unique, one per image")
        return _build(opened, names, owned)
    except BaseException:
        for image in owned:
            image.close()
        raise


def _build(images: list[Any], labels: list[str], owned: list[Any]) -> Comparison:
    baseline = images[0].filesystem
    diffs = {
        label: filesystem_diff(baseline, image.filesystem)
        for label, image in zip(labels[1:], images[1:])
    }
    directories = {
        label: directory_sizes(baseline, image.filesystem)
        for label, image in zip(labels[1:], images[1:])
    }
    layers = _layers(images, labels)
    return Comparison(
        images=images,
        labels=labels,
        summary=_summary(images, labels, diffs),
        layers=layers,
        pull=_pull(images, labels, layers),
        diffs=diffs,
        directories=directories,
        _owned=owned,
    )


def _labels(images: list[Any]) -> list[str]:
    names = []
    for image in images:
        reference = image.reference
        for prefix in ("docker-archive:", "oci-archive:", "oci:", "docker-daemon:"):
            reference = reference.removeprefix(prefix)
        name = os.path.basename(reference.rstrip("/")) or reference
        names.append(name.removesuffix(".tar"))
    if len(set(names)) != len(names):
        names = [f"{index}: {name}" for index, name in enumerate(names)]
    return names


def _summary(
    images: list[Any], labels: list[str], diffs: dict[str, pd.DataFrame]
) -> pd.DataFrame:
    rows = []
    for label, image in zip(labels, images):
        metrics = image.metrics
        diff = diffs.get(label)
        counts = diff["change"].value_counts() if diff is not None else {}
        rows.append(
            {
                "label": label,
                "reference": image.reference,
                "layers": len(image.layers),
                "content_bytes": metrics.content_bytes,
                "compressed_bytes": int(image.layers["compressed_size"].sum()),
                "uncompressed_bytes": int(image.layers["uncompressed_size"].sum()),
                "paths": len(image.filesystem),
                "final_bytes": metrics.final_bytes,
                "reclaimable_bytes": metrics.reclaimable_bytes,
                "efficiency": metrics.efficiency,
                **{name: int(counts.get(name, 0)) for name in DIFF_CHANGES[:-1]},
            }
        )
    return pd.DataFrame(rows)


def _layers(images: list[Any], labels: list[str]) -> pd.DataFrame:
    rows: dict[str, dict[str, Any]] = {}
    for label, image in zip(labels, images):
        for layer in image.layers.itertuples():
            row = rows.setdefault(
                str(layer.diff_id),
                {
                    "diff_id": str(layer.diff_id),
                    "instruction": layer.instruction,
                    "compressed_size": int(layer.compressed_size),
                    "uncompressed_size": int(layer.uncompressed_size),
                },
            )
            row[label] = True
    table = pd.DataFrame(list(rows.values()))
    for label in labels:
        table[label] = table[label].astype("boolean").fillna(False).astype(bool)
    table["images"] = table[labels].sum(axis=1).astype(int)
    return table


def _pull(images: list[Any], labels: list[str], layers: pd.DataFrame) -> pd.DataFrame:
    baseline = labels[0]
    present = set(layer_keys(images[0], "chain_id"))
    rows = []
    for label, image in zip(labels, images):
        sizes = image.layers["compressed_size"].astype(int).tolist()
        new = [
            size
            for size, key in zip(sizes, layer_keys(image, "chain_id"))
            if key not in present or label == baseline
        ]
        mine = layers[layers[label]]
        unique = mine[mine["images"] == 1]
        rows.append(
            {
                "label": label,
                "layers": len(sizes),
                "compressed_bytes": sum(sizes),
                "unique_layers": len(unique),
                "unique_bytes": int(unique["compressed_size"].sum()),
                "shared_with_baseline": int(mine[baseline].sum()),
                "layers_to_pull_after_baseline": len(new),
                "bytes_to_pull_after_baseline": sum(new),
            }
        )
    return pd.DataFrame(rows)


def filesystem_diff(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Return how each path of two final filesystems differs, changed first.

    ``before`` and ``after`` are ``filesystem`` tables. The result has the
    columns of :data:`DIFF_COLUMNS` and one row per path of either side,
    ordered by change (``unchanged`` last), then by the size of the change.
    """
    columns = ["path", "kind", "size", "mode", "uid", "gid", "link_target", "hash"]
    merged = _comparable(before[columns]).merge(
        _comparable(after[columns]), on="path", how="outer", suffixes=_SIDES
    )
    both = (merged["kind_before"].notna() & merged["kind_after"].notna()).to_numpy()
    kind = _differs(merged, "kind") & both
    content = (_differs(merged, "link_target") | _content_differs(merged)) & both
    mode = _differs(merged, "mode") & both
    owner = (_differs(merged, "uid") | _differs(merged, "gid")) & both

    change = np.full(len(merged), "unchanged", dtype=object)
    change[mode | owner] = "metadata"
    change[kind | content] = "modified"
    change[merged["kind_before"].isna().to_numpy()] = "added"
    change[merged["kind_after"].isna().to_numpy()] = "removed"

    size_before = merged["size_before"].fillna(0).astype("int64")
    size_after = merged["size_after"].fillna(0).astype("int64")
    table = pd.DataFrame(
        {
            "path": merged["path"].astype("string"),
            "change": pd.Categorical(change, dtype=_DIFF_CATEGORY),
            "kind_before": merged["original_kind_before"].astype("string"),
            "kind_after": merged["original_kind_after"].astype("string"),
            "size_before": size_before,
            "size_after": size_after,
            "size_change": size_after - size_before,
            "mode_before": merged["mode_before"].astype("Int64"),
            "mode_after": merged["mode_after"].astype("Int64"),
            "kind_changed": kind,
            "content_changed": content,
            "mode_changed": mode,
            "owner_changed": owner,
        }
    )
    return _changed_first(table)[list(DIFF_COLUMNS)]


_SIDES = ("_before", "_after")


def _comparable(filesystem: pd.DataFrame) -> pd.DataFrame:
    table = filesystem.copy()
    table["original_kind"] = table["kind"].astype(str)
    hardlink = table["original_kind"] == "hardlink"
    table["kind"] = table["original_kind"].where(~hardlink, "file")
    table["link_target"] = table["link_target"].astype(object).where(~hardlink, None)
    return table


def _differs(merged: pd.DataFrame, name: str) -> np.ndarray:
    # pandas compares missing values as unequal, so both sides' missing
    # values become one marker first.
    left = (
        merged[f"{name}_before"]
        .astype(object)
        .where(merged[f"{name}_before"].notna(), "")
    )
    right = (
        merged[f"{name}_after"]
        .astype(object)
        .where(merged[f"{name}_after"].notna(), "")
    )
    return (left != right).to_numpy(dtype=bool)


def _content_differs(merged: pd.DataFrame) -> np.ndarray:
    hashes = (merged["hash_before"].notna() & merged["hash_after"].notna()).to_numpy()
    by_hash = _differs(merged, "hash")
    # Without hashes (hash_content=False) only a size change is visible.
    by_size = (merged["size_before"] != merged["size_after"]).to_numpy(dtype=bool)
    return np.where(hashes, by_hash, by_size)


def _changed_first(table: pd.DataFrame) -> pd.DataFrame:
    order = table["change"].cat.codes.replace({DIFF_CHANGES.index("unchanged"): 9})
    table = table.assign(_order=order, _size=-table["size_change"].abs())
    table = table.sort_values(["_order", "_size", "path"], kind="stable")
    return table.drop(columns=["_order", "_size"]).reset_index(drop=True)


def directory_sizes(
    before: pd.DataFrame, after: pd.DataFrame, *, depth: int = 2
) -> pd.DataFrame:
    """Return content bytes per directory, first ``depth`` levels, before and after.

    Columns: ``directory``, ``size_before``, ``size_after``, ``size_change``,
    ``depth`` (1 for top-level directories), largest change first. The
    content of a hardlinked group counts once, as ``du`` counts it.
    """
    sizes = [_per_directory(table, depth) for table in (before, after)]
    table = pd.concat(sizes, axis=1, keys=["size_before", "size_after"]).fillna(0)
    table = table.astype("int64").reset_index(names="directory")
    table["size_change"] = table["size_after"] - table["size_before"]
    # astype(str): with no directory at all the column is empty and has no
    # string dtype, and .str would raise.
    table["depth"] = table["directory"].astype(str).str.count("/") + 1
    return largest_change_first(table)


def largest_change_first(table: pd.DataFrame) -> pd.DataFrame:
    """Return ``table`` ordered by the absolute ``size_change``, largest first.

    Rows with equal changes keep their order. The index is reset.
    """
    order = table["size_change"].abs().sort_values(ascending=False, kind="stable")
    return table.loc[order.index].reset_index(drop=True)


def counted_diff_sizes(
    diff: pd.DataFrame, before: pd.DataFrame, after: pd.DataFrame
) -> pd.DataFrame:
    """Return ``diff`` with its sizes counted as :func:`directory_sizes` counts them.

    ``before`` and ``after`` are the filesystems the diff was made from. A
    hardlink whose group is counted at another path gets 0, so a sum over
    rows counts shared content once. The index and other columns are kept.
    """
    paths = diff["path"].astype(str)
    size_before = _sizes_by_path(before).reindex(paths, fill_value=0).to_numpy()
    size_after = _sizes_by_path(after).reindex(paths, fill_value=0).to_numpy()
    return diff.assign(
        size_before=size_before,
        size_after=size_after,
        size_change=size_after - size_before,
    )


def _sizes_by_path(filesystem: pd.DataFrame) -> pd.Series:
    return pd.Series(
        content_sizes(filesystem).to_numpy(), index=filesystem["path"].astype(str)
    )


def _per_directory(filesystem: pd.DataFrame, depth: int) -> pd.Series:
    sizes = content_sizes(filesystem)
    regular = filesystem[sizes > 0]
    parts = regular["path"].astype(str).str.split("/")
    totals: dict[str, int] = {}
    for level in range(1, depth + 1):
        # A file directly in a shallower directory has no entry at this level.
        deep = parts.str.len() > level
        keys = parts[deep].str[:level].str.join("/")
        sums = sizes[regular.index][deep].groupby(keys.to_numpy()).sum()
        totals.update({str(key): int(value) for key, value in sums.items()})
    return pd.Series(totals, dtype="int64")


def content_sizes(filesystem: pd.DataFrame) -> pd.Series:
    """Return the content bytes counted at each path, each hardlinked group once.

    A regular file counts its size. A hardlink counts nothing when the file
    it links to is still visible (same layer, same path). Otherwise the
    first link of its group, by path, counts the shared content.
    """
    kinds = filesystem["kind"].astype(str)
    sizes = filesystem["size"].where(kinds.isin(["file", "hardlink"]), 0).copy()
    links = filesystem[kinds == "hardlink"]
    if links.empty:
        return sizes.astype("int64")
    files = filesystem[kinds == "file"]
    visible = set(zip(files["layer"].tolist(), files["path"].astype(str).tolist()))
    seen: set[tuple[int, str]] = set()
    for index, layer, target in sorted(
        zip(links.index, links["layer"].tolist(), links["link_target"].astype(str)),
        key=lambda row: str(filesystem.at[row[0], "path"]),
    ):
        group = (layer, target)
        if group in visible or group in seen:
            sizes.at[index] = 0
        seen.add(group)
    return sizes.astype("int64")


def comparison_html(
    comparison: Comparison,
    *,
    top: int = 50,
    charts: bool = False,
    figures_html: Sequence[str] = (),
) -> str:
    """Return the comparison as an HTML section, every image-given text escaped.

    ``charts`` adds the size chart and the side-by-side waterfalls as plotly
    divs, for a page that already loads plotly.js. ``figures_html`` is
    markup placed under the heading instead, which must already be escaped
    (the report puts its own chart elements there).
    """
    from ._compare_plots import sizes_figure, waterfalls_figure

    parts = ['<div class="layerlab-comparison"><h2>Comparison</h2>', *figures_html]
    if charts:
        for figure in (sizes_figure(comparison), waterfalls_figure(comparison)):
            parts.append(
                figure.to_html(
                    include_plotlyjs=False, full_html=False, config=OFFLINE_CONFIG
                )
            )
    parts.append(
        _html_table(
            comparison.summary,
            ["label", "layers", "content_bytes", "compressed_bytes", "paths"]
            + ["final_bytes", "reclaimable_bytes"],
            sizes={"content_bytes", "compressed_bytes", "final_bytes"}
            | {"reclaimable_bytes"},
        )
    )
    parts.append(
        "<h3>Pulling the first image, then each other once the first is present</h3>"
    )
    parts.append(
        _html_table(
            comparison.pull,
            ["label", "layers", "shared_with_baseline", "unique_bytes"]
            + ["layers_to_pull_after_baseline", "bytes_to_pull_after_baseline"],
            sizes={"unique_bytes", "bytes_to_pull_after_baseline"},
        )
    )
    for label, diff in comparison.diffs.items():
        parts.extend(_diff_section(comparison, label, diff, top))
    parts.append("</div>")
    return "\n".join(parts)


def _diff_section(
    comparison: Comparison, label: str, diff: pd.DataFrame, top: int
) -> list[str]:
    baseline = comparison.labels[0]
    changed = diff[diff["change"] != "unchanged"]
    counts = changed["change"].value_counts()
    summary = ", ".join(
        f"{int(counts.get(name, 0))} {name}" for name in DIFF_CHANGES[:-1]
    )
    net = human_bytes(comparison.net_change(label))
    directories = comparison.directories[label]
    return [
        f"<h3>{html_text(label)} against {html_text(baseline)}</h3>",
        f"<p>{summary}; net {html_text(net)}.</p>",
        _html_table(
            changed.head(top),
            ["path", "change", "kind_before", "kind_after", "size_change"],
            sizes={"size_change"},
        ),
        f"<h4>Size change per directory: {html_text(label)}</h4>",
        _html_table(
            directories[directories["size_change"] != 0].head(top),
            ["directory", "size_before", "size_after", "size_change"],
            sizes={"size_before", "size_after", "size_change"},
        ),
    ]


# Column headers of the HTML tables where the column name alone would mislead:
# a docker archive stores layers uncompressed, so its blobs are "stored".
_HTML_HEADERS = {
    "compressed_bytes": "stored bytes",
    "shared_with_baseline": "layers shared with the first",
    "unique_bytes": "bytes in layers no other image has",
    "layers_to_pull_after_baseline": "layers to pull",
    "bytes_to_pull_after_baseline": "bytes to pull",
}
# Columns of paths inside the image, shown from the root as elsewhere.
_PATH_COLUMNS = {"path", "directory"}


def _html_table(table: pd.DataFrame, columns: list[str], *, sizes: set[str]) -> str:
    if table.empty:
        return "<p>No difference.</p>"
    head = "".join(
        f'<th scope="col">{html_text(_HTML_HEADERS.get(name, name.replace("_", " ")))}'
        "</th>"
        for name in columns
    )
    rows = []
    for record in table[columns].itertuples(index=False):
        cells = [_html_cell(name, value, sizes) for name, value in zip(columns, record)]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    # The wrapper scrolls a wide table sideways on a narrow screen.
    return (
        '<div class="wide"><table class="data">'
        f"<thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _html_cell(name: str, value: Any, sizes: set[str]) -> str:
    if name in sizes:
        return f'<td class="number">{html_text(human_bytes(int(value)))}</td>'
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return f'<td class="number">{int(value):,}</td>'
    text = _cell(value)
    if name in _PATH_COLUMNS:
        return f'<td class="path">/{html_text(text)}</td>'
    return f"<td>{html_text(text)}</td>"


def _cell(value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return str(value)
