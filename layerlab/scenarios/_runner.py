"""Build the scenario variants through the Docker Engine and tabulate them."""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .. import _bases
from .._awscli_standin import AwscliDownload, awscli_download
from .._build import BuildResult, build, rebuild_after_edit
from .._daemon import connect
from .._errors import EngineError
from .._progress import ProgressHook
from ._catalog import APP_DIR, Scenario, Variant, get_scenario, list_scenarios

logger = logging.getLogger("layerlab")

RESULT_COLUMNS: dict[str, object] = {
    "scenario": "string",
    "variant": "string",
    "tag": "string",
    "size_bytes": "Int64",
    "size_mb": "Float64",
    "layers": "Int64",
    "build_s": "Float64",
    "build_cache_hits": "Int64",
    "build_steps": "Int64",
    "rebuild_s": "Float64",
    "rebuild_cache_hits": "Int64",
    "rebuild_steps": "Int64",
    "first_rebuilt_step": "Int64",
    "edit": "string",
}
"""Columns of :meth:`ScenarioRun.table`, one row per variant.

- ``size_bytes``: the image size the engine reports (``docker images``, the
  sum of the uncompressed layers); ``size_mb`` in units of 10**6 bytes.
- ``layers``: filesystem layers of the image.
- ``build_s``: wall time of the first build, or of the squash in the squash
  scenario (for the first layerlab variant, reading the image included).
- ``build_cache_hits`` of ``build_steps``: steps taken from the build cache,
  out of every step that the cache can serve. ``FROM`` and the ``ARG`` lines
  before it are not counted, because the cache never serves them.
- ``rebuild_s``, ``rebuild_cache_hits``, ``rebuild_steps``: the same for the
  build after ``edit``; ``first_rebuilt_step``: the first step that ran.
"""


@dataclass(frozen=True)
class BaseImage:
    """A base image as the engine had it for a scenario build.

    ``stand_in`` is true for the images that layerlab made locally because
    the registry was out of reach. ``description`` then describes how it
    was made.
    """

    tag: str
    image_id: str
    stand_in: bool
    description: str | None


@dataclass
class VariantRun:
    """The image of one variant, its build and its rebuild after the edit.

    ``build`` is None for images made by squashing, whose time is in
    ``seconds``; ``rebuild`` is None when the scenario measures no rebuild.
    """

    scenario: str
    variant: Variant
    tag: str
    image_id: str
    size: int
    layers: int
    build: BuildResult | None = None
    rebuild: BuildResult | None = None
    seconds: float | None = None

    def row(self) -> dict[str, Any]:
        """Return this variant's row of :meth:`ScenarioRun.table`."""
        row: dict[str, Any] = {
            "scenario": self.scenario,
            "variant": self.variant.name,
            "tag": self.tag,
            "size_bytes": self.size,
            "size_mb": self.size / 1e6,
            "layers": self.layers,
            "build_s": self.build.seconds if self.build else self.seconds,
            "edit": None,
        }
        if self.build is not None:
            row["build_cache_hits"], row["build_steps"] = cache_hits(self.build)
        if self.rebuild is not None and self.variant.edit is not None:
            row["edit"] = self.variant.edit.summary
            row["rebuild_s"] = self.rebuild.seconds
            row["rebuild_cache_hits"], row["rebuild_steps"] = cache_hits(self.rebuild)
            row["first_rebuilt_step"] = _first_rebuilt_step(self.rebuild)
        return row


@dataclass
class ScenarioRun:
    """The variants of one scenario as built, with the bases and downloads used.

    Attributes:
        scenario: the scenario.
        variants: the built variants by name, in the scenario's order.
        bases: the base images by tag.
        awscli: where the AWS CLI zip came from (scenario 3 and 4 only).
        notes: what differs from the talk's setup, as sentences.
    """

    scenario: Scenario
    variants: dict[str, VariantRun] = field(default_factory=dict)
    bases: dict[str, BaseImage] = field(default_factory=dict)
    awscli: AwscliDownload | None = None
    notes: list[str] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        """Return one row per variant in the columns of ``RESULT_COLUMNS``."""
        return results_table([self])

    def tag(self, variant: str) -> str:
        """Return the tag of ``variant``'s image."""
        return self.variants[variant].tag

    def steps(self, variant: str, *, rebuild: bool = False) -> pd.DataFrame:
        """Return the step table of ``variant``'s build, or of its rebuild."""
        run = self.variants[variant]
        result = run.rebuild if rebuild else run.build
        if result is None:
            kind = "rebuild" if rebuild else "build"
            raise KeyError(f"variant {variant!r} has no {kind}")
        return result.steps

    @property
    def stand_ins(self) -> list[str]:
        """Sentences naming every stand-in the builds used."""
        lines = [
            f"{base.tag}: {base.description or 'a local stand-in'}"
            for base in self.bases.values()
            if base.stand_in
        ]
        if self.awscli is not None and self.awscli.stand_in:
            lines.append(f"AWS CLI: {self.awscli.description}")
        return lines


def results_table(runs: list[ScenarioRun]) -> pd.DataFrame:
    """Concatenate the rows of several scenario runs into one table."""
    rows = [variant.row() for run in runs for variant in run.variants.values()]
    table = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    return table.astype(RESULT_COLUMNS)  # type: ignore[arg-type]


def cache_hits(result: BuildResult) -> tuple[int, int]:
    """Return (steps from the build cache, steps that could have been)."""
    steps = result.steps
    froms = steps.index[steps["keyword"] == "FROM"]
    first_from = froms[0] if len(froms) else -1
    cacheable = steps[steps["cached"].notna() & (steps.index > first_from)]
    return int(cacheable["cached"].sum()), len(cacheable)


def _first_rebuilt_step(result: BuildResult) -> int | None:
    ran = result.steps[result.steps["cached"].eq(False).fillna(False)]
    froms = result.steps.index[result.steps["keyword"] == "FROM"]
    if len(froms):
        ran = ran[ran.index > froms[0]]
    return None if ran.empty else int(ran["step"].iloc[0])


def build_scenario(
    scenario: str | int | Scenario,
    *,
    variants: list[str] | None = None,
    rebuild: bool = True,
    no_cache: bool = False,
    awscli_stand_in: bool | None = None,
    progress: bool | ProgressHook | None = None,
) -> ScenarioRun:
    """Build the variants of a scenario and return their images and steps.

    The base images come from :func:`layerlab._bases.ensure_base`: the
    engine's own, a pulled one, or a local stand-in. Builds reuse the build
    cache unless ``no_cache`` is true, which makes the first build of every
    variant run all its steps. With ``rebuild``, a variant that has an
    ``edit`` is built again after it. The image the rebuild replaces is
    removed from the engine when nothing else uses it, and so are the build
    stages of the rebuild. With ``no_cache``, the images of the earlier
    builds stay as build cache (``docker image prune`` removes them).

    ``awscli_stand_in`` chooses the AWS CLI download of scenario 3: None
    tries the download site first, True always serves the stand-in zip,
    False never does. ``progress`` is True for ``tqdm.auto`` bars or a
    ``ProgressHook``, which gets one unit per build step.

    Scenario 4 (squash) builds scenario 3's ``rm-separate`` variant from the
    build cache and squashes it, so ``rebuild`` and ``no_cache`` do not
    apply to it.
    """
    chosen = scenario if isinstance(scenario, Scenario) else get_scenario(scenario)
    if chosen.name == "squash":
        from ._squash import squash_scenario

        return squash_scenario(
            variants=variants, awscli_stand_in=awscli_stand_in, progress=progress
        )
    selected = [chosen.variant(name) for name in variants or []] or list(
        chosen.variants
    )

    run = ScenarioRun(chosen)
    for tag in chosen.bases:
        run.bases[tag] = ensure_base_image(tag, progress=progress)
    with tempfile.TemporaryDirectory(prefix="layerlab-scenario-") as scratch:
        context = assemble_context(chosen, Path(scratch) / "context")
        with _downloads(chosen, awscli_stand_in) as (awscli, buildargs):
            run.awscli = awscli
            for variant in _bar(selected, chosen, progress):
                run.variants[variant.name] = _build_variant(
                    chosen,
                    variant,
                    context,
                    buildargs=buildargs,
                    rebuild=rebuild,
                    no_cache=no_cache,
                    progress=_step_progress(progress),
                )
    run.notes = _notes(run)
    return run


def build_scenarios(
    scenarios: list[str | int] | None = None,
    *,
    rebuild: bool = True,
    no_cache: bool = False,
    awscli_stand_in: bool | None = None,
    progress: bool | ProgressHook | None = None,
) -> list[ScenarioRun]:
    """Build several scenarios, all by default, in the talk's order.

    The options are those of :func:`build_scenario`.
    """
    chosen = [get_scenario(name) for name in scenarios or []] or list_scenarios()
    chosen.sort(key=lambda scenario: scenario.number)
    return [
        build_scenario(
            scenario,
            rebuild=rebuild,
            no_cache=no_cache,
            awscli_stand_in=awscli_stand_in,
            progress=progress,
        )
        for scenario in chosen
    ]


def ensure_base_image(
    tag: str, *, progress: bool | ProgressHook | None = None
) -> BaseImage:
    """Make sure the engine has ``tag`` (pulled or a stand-in) and describe it."""
    image_id = _bases.ensure_base(tag, progress=progress)
    labels = _labels(tag)
    return BaseImage(
        tag=tag,
        image_id=image_id,
        stand_in=labels.get(_bases.STAND_IN_LABEL) == "true",
        description=labels.get(_bases.DESCRIPTION_LABEL),
    )


def assemble_context(scenario: Scenario, directory: Path) -> Path:
    """Copy the app and the scenario's Dockerfiles into ``directory``."""
    shutil.copytree(APP_DIR, directory)
    for path in sorted(scenario.directory.glob("Dockerfile.*")):
        shutil.copy2(path, directory / path.name)
    return directory


# The default of AWSCLI_URL in the Dockerfiles.
DEFAULT_AWSCLI_URL = "https://awscli.amazonaws.com/awscli-exe-linux-x86_64.zip"


@contextlib.contextmanager
def _downloads(
    scenario: Scenario, stand_in: bool | None
) -> Iterator[tuple[AwscliDownload | None, dict[str, str]]]:
    """Yield the AWS CLI download of scenario 3 and the build arguments for it."""
    if scenario.name != "rm-does-not-shrink":
        yield None, {}
        return
    architecture = engine_architecture()
    with awscli_download(architecture=architecture, stand_in=stand_in) as download:
        # Passing the argument only when it differs from the Dockerfiles'
        # default keeps their step and cache key as written.
        if download.url == DEFAULT_AWSCLI_URL:
            yield download, {}
        else:
            yield download, {"AWSCLI_URL": download.url}


def _build_variant(
    scenario: Scenario,
    variant: Variant,
    context: Path,
    *,
    buildargs: dict[str, str],
    rebuild: bool,
    no_cache: bool,
    progress: ProgressHook | None,
) -> VariantRun:
    tag = scenario.tag(variant.name)
    previous = _image_id(tag)
    options: dict[str, Any] = {
        "tag": tag,
        "dockerfile": f"Dockerfile.{variant.name}",
        "buildargs": buildargs,
        "progress": progress,
    }
    first = build(context, no_cache=True, **options) if no_cache else None
    second = None
    if rebuild and variant.edit is not None:
        edit = variant.edit
        result = rebuild_after_edit(context, edit.path, edit.apply, **options)
        first = first or result.before
        second = result.after
    elif first is None:
        first = build(context, **options)

    final = second or first
    size, layers = _size_and_layers(tag)
    # The image before the edit is the build cache of the next run: keep it.
    if previous is not None and previous not in (first.image_id, final.image_id):
        remove_if_untagged(previous)
    # No later build repeats the edit, so the build stages it made are no
    # cache for anything.
    if second is not None:
        for image_id in _stage_results(second):
            remove_if_untagged(image_id)
    logger.info("built %s: %.0f MB, %d layers", tag, size / 1e6, layers)
    return VariantRun(
        scenario=scenario.name,
        variant=variant,
        tag=tag,
        image_id=final.image_id,
        size=size,
        layers=layers,
        build=first,
        rebuild=second,
    )


def _stage_results(result: BuildResult) -> list[str]:
    """Return the images that ended each stage but the last of a build."""
    steps = result.steps.reset_index(drop=True)
    starts = steps.index[steps["keyword"] == "FROM"].tolist()
    ends = [start - 1 for start in starts[1:]]
    return [
        str(steps.loc[end, "image_id"])
        for end in ends
        if pd.notna(steps.loc[end, "image_id"])
    ]


def _notes(run: ScenarioRun) -> list[str]:
    notes = []
    for base in run.bases.values():
        if base.stand_in:
            notes.append(
                f"{base.tag} is a local stand-in, not the Docker Official Image, "
                "so sizes differ from the talk's by what the two base images differ."
            )
    if run.awscli is not None and run.awscli.stand_in:
        notes.append(f"The AWS CLI download is {run.awscli.description}.")
    return notes


# The engine


def engine_architecture() -> str:
    """Return the engine's architecture as ``docker info`` reports it."""
    client = connect()
    try:
        return str(client.api.info().get("Architecture", "x86_64"))
    finally:
        client.close()


def _inspect(reference: str) -> dict[str, Any] | None:
    import docker.errors

    client = connect()
    try:
        return client.api.inspect_image(reference)
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.APIError as error:
        raise EngineError(
            f"inspecting the image failed: {error.explanation or error}",
            image=reference,
        ) from None
    finally:
        client.close()


def _image_id(reference: str) -> str | None:
    attributes = _inspect(reference)
    return None if attributes is None else str(attributes["Id"])


def _labels(reference: str) -> dict[str, str]:
    attributes = _inspect(reference) or {}
    return (attributes.get("Config") or {}).get("Labels") or {}


def _size_and_layers(reference: str) -> tuple[int, int]:
    attributes = _inspect(reference)
    if attributes is None:
        raise EngineError("the image is missing right after its build", image=reference)
    layers = (attributes.get("RootFS") or {}).get("Layers") or []
    return int(attributes["Size"]), len(layers)


def remove_if_untagged(image_id: str) -> None:
    """Remove an earlier scenario image that a new build or squash left untagged.

    Images that still have a tag, or children (build cache that later builds
    use), are kept: the engine rejects their removal.
    """
    import docker.errors

    attributes = _inspect(image_id)
    if attributes is None or attributes.get("RepoTags"):
        return
    client = connect()
    try:
        client.api.remove_image(image_id)
        logger.info("removed the untagged earlier image %s", image_id)
    except docker.errors.APIError as error:
        logger.info("kept the earlier image %s: %s", image_id, error)
    finally:
        client.close()


# Progress


class _StepBar:
    """A ``tqdm.auto`` bar counting build steps."""

    def __init__(self) -> None:
        self._bar: Any = None

    def start(self, total: int, description: str) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=total, desc=description, unit="step", leave=False)

    def advance(self, amount: int) -> None:
        if self._bar is not None:
            self._bar.update(amount)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _step_progress(progress: bool | ProgressHook | None) -> ProgressHook | None:
    if progress is True:
        return _StepBar()
    return progress or None


def _bar(variants: list[Variant], scenario: Scenario, progress: Any) -> Any:
    if progress is not True:
        return variants
    from tqdm.auto import tqdm

    return tqdm(
        variants, desc=f"scenario {scenario.number}: {scenario.name}", unit="variant"
    )
