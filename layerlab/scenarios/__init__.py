"""The four scenarios of the talk, built for real through the Docker Engine.

1. ``build-cache``: the order of ``COPY`` and ``npm install``, and
   ``apt-get update`` in a step of its own.
2. ``multistage``: one stage on ``node:22`` against a build stage and a
   ``node:22-slim`` runtime stage.
3. ``rm-does-not-shrink``: deleting the AWS CLI installer in a later step
   against in the same step.
4. ``squash``: the image of scenario 3 squashed by layerlab and docker-squash.

Start with :func:`build_scenario` (or :func:`build_scenarios`), then
:meth:`ScenarioRun.table` and :func:`against_slides`. The Dockerfiles and
the Node.js app they package are under ``files/``.

Where Docker Hub or the AWS CLI download site is out of reach, the builds
use local stand-ins (see ``layerlab._bases`` and
``layerlab._awscli_standin``), and :attr:`ScenarioRun.stand_ins` names them.
"""

from __future__ import annotations

from ._catalog import (
    APP_DIR,
    FILES_DIR,
    Edit,
    Scenario,
    Variant,
    get_scenario,
    list_scenarios,
)
from ._measure import apt_index_age, layer_history, layer_summary
from ._runner import (
    RESULT_COLUMNS,
    BaseImage,
    ScenarioRun,
    VariantRun,
    build_scenario,
    build_scenarios,
    cache_hits,
    results_table,
)
from ._slides import (
    against_slides,
    figure_against_slides,
    figure_build_times,
    results_view,
    slide_figures,
)
from ._squash import docker_squash_executable, layerlab_squash_available

__all__ = [
    "APP_DIR",
    "FILES_DIR",
    "RESULT_COLUMNS",
    "BaseImage",
    "Edit",
    "Scenario",
    "ScenarioRun",
    "Variant",
    "VariantRun",
    "against_slides",
    "apt_index_age",
    "build_scenario",
    "build_scenarios",
    "cache_hits",
    "docker_squash_executable",
    "figure_against_slides",
    "figure_build_times",
    "get_scenario",
    "layer_history",
    "layer_summary",
    "layerlab_squash_available",
    "list_scenarios",
    "results_table",
    "results_view",
    "slide_figures",
]
