"""A plain-language paragraph on what an image's size and waste figures mean."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ._format import human_bytes, share, short_command

_ADVICE = {
    "deleted": "Deleting files in a later step does not make an image smaller, "
    "because the step that wrote them still ships them: delete them in the RUN "
    "step that creates them, or make them in a build stage and copy only the "
    "result.",
    "overwritten": "A later step that replaces a file keeps the old copy in the "
    "lower layer: write each file once, or move the step that writes the final "
    "version earlier.",
    "identical": "Files rewritten with identical content, typically by a "
    "recursive chown, chmod or touch, are stored twice: set ownership and mode "
    "in the step that creates the files (COPY --chown, COPY --chmod).",
    "metadata": "Files copied only to change their mode or owner are stored "
    "twice: set ownership and mode in the step that creates the files "
    "(COPY --chown, COPY --chmod).",
}


def plain_reading(image: Any) -> str:
    """Return one paragraph that reads the image's metrics for a person."""
    metrics = image.metrics
    sentences = [_storage_sentence(image, metrics)]
    if metrics.reclaimable_bytes:
        sentences.append(_largest_sentence(image))
        sentences.append(_ADVICE[_main_reason(metrics)])
    sentences.append(_dive_sentence(metrics))
    return " ".join(sentence for sentence in sentences if sentence)


def _storage_sentence(image: Any, metrics: Any) -> str:
    content = metrics.content_bytes
    count = len(image.layers)
    stored = f"{human_bytes(content)} of file content in {count} layer{_s(count)}"
    if not count:
        return "This image has no layers, so its filesystem is empty."
    if not content:
        return f"This image stores no file content in its {count} layer{_s(count)}."
    if not metrics.reclaimable_bytes:
        return (
            f"This image stores {stored}, and all of it is visible in the final "
            "filesystem: no layer holds bytes that a later layer deletes or "
            "replaces, so squashing would not make it smaller."
        )
    # One decimal, as the metrics table beside the paragraph shows it.
    portion = share(metrics.reclaimable_bytes, content)
    return (
        f"This image stores {stored}, but {human_bytes(metrics.reclaimable_bytes)} "
        f"of it ({portion}) cannot be seen in the final filesystem: later layers "
        "deleted or replaced it, yet it is still stored and downloaded with the image. "
        "Squashing "
        "all layers into one would save exactly that much."
    )


def _largest_sentence(image: Any) -> str:
    largest = image.waste.iloc[0]
    commands = {
        int(row.layer): short_command(_text(row.created_by), _text(row.instruction))
        for row in image.layers.itertuples()
    }
    written = int(largest["layer"])
    sentence = (
        f"The largest item is /{largest['path']} ({human_bytes(largest['size'])}, "
        f"{largest['reason']}), written by layer {written} "
        f"({commands.get(written, 'no history')})"
    )
    if not pd.isna(largest["hidden_by"]):
        hidden_by = int(largest["hidden_by"])
        sentence += (
            f" and hidden by layer {hidden_by} "
            f"({commands.get(hidden_by, 'no history')})"
        )
    return sentence + "."


def _main_reason(metrics: Any) -> str:
    by_reason = metrics.wasted_by_reason
    return max(by_reason, key=lambda reason: by_reason[reason])


def _dive_sentence(metrics: Any) -> str:
    sentence = (
        f"dive rates the image {metrics.efficiency:.1%} efficient with "
        f"{human_bytes(metrics.inefficient_bytes)} of inefficient bytes."
    )
    dive, exact = metrics.inefficient_bytes, metrics.reclaimable_bytes
    if dive > exact:
        sentence += (
            f" dive's figure is larger{_exact_pair(dive, exact)} because it counts "
            "every copy of a path found in two or more layers, including the copy "
            "that stays visible."
        )
    elif dive < exact:
        sentence += (
            f" dive's figure is smaller{_exact_pair(dive, exact)} because it counts "
            "only paths found in two or more layers, so it misses files removed "
            "together with their directory (rm -rf DIR, or an opaque directory)."
        )
    return sentence


def _exact_pair(dive: int, exact: int) -> str:
    # Two figures that round to the same text need their exact values, or
    # "larger" reads as a mistake.
    if human_bytes(dive) != human_bytes(exact):
        return ""
    return f" ({dive:,} B against {exact:,} B reclaimable)"


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def _text(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)
