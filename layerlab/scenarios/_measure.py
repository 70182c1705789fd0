"""Measurements the scenario notebooks take from the engine."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .._daemon import connect
from .._errors import EngineError
from .._format import short_command
from ._runner import ScenarioRun

HISTORY_COLUMNS: dict[str, object] = {
    "step": "int64",
    "instruction": "string",
    "created": "datetime64[s, UTC]",
    "size_bytes": "int64",
}


def layer_history(reference: str) -> pd.DataFrame:
    """Return the engine's history of an image, oldest step first.

    One row per history entry, as ``docker history`` lists them, with the
    time each step ran. A step taken from the build cache keeps the time of
    the build that first ran it.
    """
    import docker.errors

    client = connect()
    try:
        entries = client.api.history(reference)
    except docker.errors.APIError as error:
        raise EngineError(
            f"reading the image history failed: {error.explanation or error}",
            image=reference,
        ) from None
    finally:
        client.close()
    rows = [
        {
            "step": position,
            "instruction": short_command(entry.get("CreatedBy"), width=120),
            "created": pd.Timestamp(int(entry.get("Created", 0)), unit="s", tz="UTC"),
            "size_bytes": int(entry.get("Size", 0)),
        }
        for position, entry in enumerate(reversed(entries))
    ]
    return pd.DataFrame(rows, columns=list(HISTORY_COLUMNS)).astype(HISTORY_COLUMNS)  # type: ignore[arg-type]


def apt_index_age(run: ScenarioRun) -> pd.DataFrame:
    """Compare when the package index was fetched with when packages were installed.

    One row per ``update-*`` variant of scenario 1, after the install-line
    edit. ``index_fetched`` is the time of the step that ran ``apt-get
    update`` and ``packages_installed`` that of the step that ran ``apt-get
    install``. ``index_age_s`` is the difference in seconds, the age of the
    index the install used. ``update_step_cached`` is whether the rebuild
    took the update step from the build cache.
    """
    rows = []
    for name, variant in run.variants.items():
        if not name.startswith("update-"):
            continue
        history = layer_history(variant.tag)
        update = _last_step(history, "apt-get update")
        install = _last_step(history, "apt-get install")
        rows.append(
            {
                "variant": name,
                "index_fetched": update["created"],
                "packages_installed": install["created"],
                "index_age_s": (install["created"] - update["created"]).total_seconds(),
                "update_step_cached": _update_cached(variant.rebuild),
            }
        )
    return pd.DataFrame(rows)


def _last_step(history: pd.DataFrame, text: str) -> Any:
    # The last match, because the base image's own steps may run it too.
    matches = history[history["instruction"].str.contains(text, regex=False)]
    if matches.empty:
        raise EngineError(f"no step of the image runs {text!r}")
    return matches.iloc[-1]


def _update_cached(result: Any) -> bool | None:
    if result is None:
        return None
    steps = result.steps
    update = steps[steps["instruction"].str.contains("apt-get update", regex=False)]
    return None if update.empty else bool(update["cached"].iloc[0])


def layer_summary(image: Any, *, width: int = 60) -> pd.DataFrame:
    """Return one short row per layer of an opened image, sizes in MB.

    Columns: ``layer``, ``step`` (the instruction, shortened to ``width``
    characters), ``size_mb`` (content bytes), ``hidden_mb`` (bytes the final
    filesystem cannot show), ``added`` and ``deleted`` (paths).
    """
    layers = image.layers
    steps = [
        short_command(_without_build_args(created_by), instruction, width=width)
        for created_by, instruction in zip(layers["created_by"], layers["instruction"])
    ]
    return pd.DataFrame(
        {
            "layer": layers["layer"],
            "step": steps,
            "size_mb": (layers["content_size"] / 1e6).round(1),
            "hidden_mb": (layers["hidden_bytes"] / 1e6).round(1),
            "added": layers["added"],
            "deleted": layers["deleted"],
        }
    )


def _without_build_args(created_by: Any) -> str | None:
    """Drop the ``|N NAME=VALUE ...`` prefix the legacy builder writes for build args."""
    if created_by is None or pd.isna(created_by):
        return None
    text = str(created_by)
    count, _, rest = text.partition(" ")
    if not (count.startswith("|") and count[1:].isdigit()):
        return text
    # NOTE: a build argument whose value contains a space is cut wrongly.
    return rest.split(" ", int(count[1:]))[-1]
