"""Match config history entries to layers, and name their instructions."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from . import _schema

_NOP = re.compile(r"#\(nop\)\s*(\w+)")
_SHELL = re.compile(r"^(\|\d+ .*?)?(/bin/(ba)?sh|sh) -c ")
_KEYWORDS = {
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
}


def instruction_of(created_by: str | None, comment: str | None = None) -> str:
    """Return the Dockerfile keyword that a history entry records, or ``""``.

    The classic builder writes ``/bin/sh -c #(nop)  ENV ...`` for metadata
    steps and ``/bin/sh -c CMD`` for RUN; BuildKit writes the keyword itself
    (``RUN /bin/sh -c ...``, ``COPY . . # buildkit``). ``docker import``
    leaves ``created_by`` empty and writes "Imported from" in the comment.
    """
    text = (created_by or "").strip()
    nop = _NOP.search(text)
    if nop and nop.group(1).upper() in _KEYWORDS:
        return nop.group(1).upper()
    first = text.split(" ", 1)[0].upper() if text else ""
    if first in _KEYWORDS:
        return first
    if _SHELL.match(text):
        return "RUN"
    if not text and comment and "import" in comment.lower():
        return "IMPORT"
    return ""


def history_table(config: dict[str, Any], layer_count: int) -> pd.DataFrame:
    """Return one row per history entry, with the layer each one made.

    Entries with ``empty_layer`` make no layer; the others take layers in
    order. When the counts disagree (hand-made or rewritten images), only the
    entries that can be matched get a layer.
    """
    entries = config.get("history") or []
    rows = []
    layer = 0
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            entry = {}
        empty = bool(entry.get("empty_layer", False))
        made = None
        if not empty and layer < layer_count:
            made = layer
            layer += 1
        rows.append(
            {
                "history_index": index,
                "created_by": entry.get("created_by"),
                "instruction": instruction_of(
                    entry.get("created_by"), entry.get("comment")
                ),
                "created": entry.get("created"),
                "comment": entry.get("comment"),
                "empty_layer": empty,
                "layer": made,
            }
        )
    if not rows:
        return _schema.empty(_schema.HISTORY_COLUMNS)
    return _schema.conform(pd.DataFrame(rows), _schema.HISTORY_COLUMNS)
