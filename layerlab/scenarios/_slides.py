"""The talk's figures beside the measured ones: a table and a bar chart."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ._catalog import list_scenarios

SLIDE_COLUMNS: dict[str, object] = {
    "scenario": "string",
    "variant": "string",
    "talk": "string",
    "talk_mb": "Float64",
}


def slide_figures() -> pd.DataFrame:
    """Return the image sizes the talk gave, one row per variant with one.

    ``talk`` is the figure as written on the slide, ``talk_mb`` its value in
    units of 10**6 bytes (an upper bound for "< 300 MB").
    """
    rows = [
        {
            "scenario": scenario.name,
            "variant": variant.name,
            "talk": variant.slide_text,
            "talk_mb": variant.slide_bytes / 1e6,
        }
        for scenario in list_scenarios()
        for variant in scenario.variants
        if variant.slide_bytes is not None
    ]
    return pd.DataFrame(rows, columns=list(SLIDE_COLUMNS)).astype(SLIDE_COLUMNS)  # type: ignore[arg-type]


def against_slides(results: pd.DataFrame) -> pd.DataFrame:
    """Set the talk's sizes beside the measured ones.

    ``results`` is a table of :func:`results_table`. The returned table has
    one row per measured variant with ``talk``, ``talk_mb``, ``measured_mb``,
    and ``ratio``, the measured size over the talk's (missing where the talk
    gave no figure).
    """
    measured = results[["scenario", "variant", "size_mb", "layers"]].rename(
        columns={"size_mb": "measured_mb"}
    )
    table = measured.merge(slide_figures(), on=["scenario", "variant"], how="left")
    table["ratio"] = table["measured_mb"] / table["talk_mb"]
    columns = ["scenario", "variant", "talk", "talk_mb", "measured_mb", "ratio"]
    return table[columns + ["layers"]]


def figure_against_slides(results: pd.DataFrame, *, title: str | None = None) -> Any:
    """Draw the talk's sizes and the measured ones as grouped bars, in MB.

    Returns a ``plotly.graph_objects.Figure``; variants without a figure in
    the talk have a measured bar only.
    """
    import plotly.graph_objects as go

    table = against_slides(results)
    labels = [f"{row.scenario}<br>{row.variant}" for row in table.itertuples()]
    figure = go.Figure()
    figure.add_trace(
        go.Bar(
            name="talk",
            x=labels,
            y=table["talk_mb"].astype("float64"),
            text=table["talk"].fillna(""),
            marker={"color": "#9e9e9e"},
        )
    )
    figure.add_trace(
        go.Bar(
            name="measured here",
            x=labels,
            y=table["measured_mb"].astype("float64"),
            text=[f"{value:.0f} MB" for value in table["measured_mb"]],
            marker={"color": "#4c78a8"},
        )
    )
    figure.update_layout(
        template="plotly_white",
        title=title,
        barmode="group",
        yaxis={"title": {"text": "image size (MB, 10^6 bytes)"}},
        legend={"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom"},
        height=420,
    )
    return figure


def figure_build_times(results: pd.DataFrame, *, title: str | None = None) -> Any:
    """Draw each variant's build and rebuild time as grouped bars, in seconds.

    The hover text gives the steps taken from the build cache.
    """
    import plotly.graph_objects as go

    figure = go.Figure()
    series = (
        ("first build", "build_s", "build_cache_hits", "build_steps", "#9e9e9e"),
        ("rebuild after the edit", "rebuild_s", "rebuild_cache_hits", "rebuild_steps", "#4c78a8"),
    )  # fmt: skip
    for name, seconds, hits, steps, color in series:
        figure.add_trace(
            go.Bar(
                name=name,
                x=results["variant"].tolist(),
                y=results[seconds].astype("float64"),
                text=[_seconds(value) for value in results[seconds]],
                hovertext=[
                    _hits(hit, total)
                    for hit, total in zip(results[hits], results[steps])
                ],
                marker={"color": color},
            )
        )
    figure.update_layout(
        template="plotly_white",
        title=title,
        barmode="group",
        yaxis={"title": {"text": "wall time (s)"}},
        legend={"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom"},
        height=400,
    )
    return figure


def _seconds(value: Any) -> str:
    return "" if pd.isna(value) else f"{value:.1f} s"


def _hits(hits: Any, steps: Any) -> str:
    if pd.isna(hits) or pd.isna(steps):
        return ""
    return f"{hits} of {steps} steps from the build cache"


def results_view(results: pd.DataFrame) -> pd.DataFrame:
    """Return the results table in a form to read: labelled, rounded, hits as "3/5".

    One row per variant with its size in MB, layers, build and rebuild times,
    the steps each took from the build cache, and the first step the rebuild
    ran. Empty cells mean the scenario does not measure that figure.
    """
    view = pd.DataFrame(
        {
            "scenario": results["scenario"],
            "variant": results["variant"],
            "size (MB)": results["size_mb"].round(0),
            "layers": results["layers"],
            "build (s)": results["build_s"].round(1),
            "cache hits": _fractions(
                results["build_cache_hits"], results["build_steps"]
            ),
            "rebuild (s)": results["rebuild_s"].round(1),
            "cache hits after the edit": _fractions(
                results["rebuild_cache_hits"], results["rebuild_steps"]
            ),
            "first rebuilt step": results["first_rebuilt_step"],
        }
    )
    return view.reset_index(drop=True)


def _fractions(hits: pd.Series, steps: pd.Series) -> list[str]:
    return [
        "" if pd.isna(hit) or pd.isna(total) else f"{hit}/{total}"
        for hit, total in zip(hits, steps)
    ]
