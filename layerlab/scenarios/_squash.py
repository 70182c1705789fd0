"""Scenario 4: squash the image of scenario 3 with layerlab and docker-squash."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from .._errors import LayerlabError
from .._progress import ProgressHook
from ._catalog import RM_DOES_NOT_SHRINK, SQUASH, Variant
from ._runner import (
    ScenarioRun,
    VariantRun,
    _image_id,
    _inspect,
    _size_and_layers,
    build_scenario,
    remove_if_untagged,
)

logger = logging.getLogger("layerlab")

SOURCE_VARIANT = "rm-separate"
RUNTIME_BASE = "node:22-slim"

# Seconds docker-squash may take for the scenario image (about 700 MB).
DOCKER_SQUASH_TIMEOUT = 900


def docker_squash_executable() -> str | None:
    """Return docker-squash's path: beside this Python first, then on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "docker-squash")
    if os.access(beside, os.X_OK):
        return beside
    return shutil.which("docker-squash")


def layerlab_squash_available() -> bool:
    """Return whether this layerlab has its squash feature."""
    return importlib.util.find_spec("layerlab._squash") is not None


def squash_scenario(
    *,
    variants: list[str] | None = None,
    awscli_stand_in: bool | None = None,
    progress: bool | ProgressHook | None = None,
) -> ScenarioRun:
    """Build scenario 3's ``rm-separate`` image and squash it in several ways.

    A variant whose tool is missing (docker-squash not installed) is left
    out, and ``ScenarioRun.notes`` records why.
    """
    selected = [SQUASH.variant(name) for name in variants or []] or list(
        SQUASH.variants
    )
    source_run = build_scenario(
        RM_DOES_NOT_SHRINK,
        variants=[SOURCE_VARIANT],
        awscli_stand_in=awscli_stand_in,
        progress=progress,
    )
    source = source_run.variants[SOURCE_VARIANT]
    run = ScenarioRun(
        SQUASH,
        bases=source_run.bases,
        awscli=source_run.awscli,
        notes=list(source_run.notes),
    )
    base_id = source_run.bases[RUNTIME_BASE].image_id
    with contextlib.closing(_SourceImage(source.tag)) as opened:
        for variant in _bar(selected, progress):
            squashed = _make_variant(variant, source, opened, base_id, run.notes)
            if squashed is not None:
                run.variants[variant.name] = squashed
    return run


class _SourceImage:
    """The image to squash, opened with layerlab on first use and closed at the end."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self._image: Any = None

    def get(self) -> Any:
        if self._image is None:
            from .._image import open_image

            self._image = open_image(f"docker-daemon:{self.tag}")
        return self._image

    def close(self) -> None:
        if self._image is not None:
            self._image.close()


def _make_variant(
    variant: Variant,
    source: VariantRun,
    opened: _SourceImage,
    base_id: str,
    notes: list[str],
) -> VariantRun | None:
    if variant.name == "original":
        return VariantRun(
            scenario=SQUASH.name,
            variant=variant,
            tag=source.tag,
            image_id=source.image_id,
            size=source.size,
            layers=source.layers,
            seconds=None,
        )
    base_layers = len(_inspect_layers(base_id))
    squashers: dict[str, Callable[[str, str], str | None]] = {
        "layerlab": lambda image, tag: _squash_with_layerlab(opened, tag, None, notes),
        "docker-squash": lambda image, tag: _docker_squash(image, tag, notes),
        "layerlab-above-base": lambda image, tag: _squash_with_layerlab(
            opened, tag, base_layers, notes
        ),
    }
    tag = SQUASH.tag(variant.name)
    previous = _image_id(tag)
    started = time.monotonic()
    if squashers[variant.name](source.tag, tag) is None:
        return None
    seconds = time.monotonic() - started

    image_id = _image_id(tag) or ""
    if previous is not None and previous != image_id:
        remove_if_untagged(previous)
    size, layers = _size_and_layers(tag)
    return VariantRun(
        scenario=SQUASH.name,
        variant=variant,
        tag=tag,
        image_id=image_id,
        size=size,
        layers=layers,
        seconds=seconds,
    )


def _docker_squash(image: str, tag: str, notes: list[str]) -> str | None:
    executable = docker_squash_executable()
    if executable is None:
        notes.append(
            "docker-squash is not installed (pip install docker-squash), so "
            "its variants are missing."
        )
        return None
    command = [executable, "--tag", tag, image]
    try:
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=DOCKER_SQUASH_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise LayerlabError(
            f"docker-squash timed out after {DOCKER_SQUASH_TIMEOUT} s", image=image
        ) from None
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).splitlines()[-20:])
        raise LayerlabError(
            f"docker-squash failed with exit code {result.returncode}:\n{tail}",
            image=image,
        )
    return tag


def _squash_with_layerlab(
    source: _SourceImage, tag: str, first: int | None, notes: list[str]
) -> str | None:
    if not layerlab_squash_available():
        notes.append(
            "This layerlab has no squash feature yet, so its variants are missing."
        )
        return None
    from .._squash import squash

    with tempfile.TemporaryDirectory(prefix="layerlab-squash-") as scratch:
        # A docker archive without compression is what the engine loads
        # fastest, and it is deleted right after the load.
        squash(
            source.get(),
            output=os.path.join(scratch, "squashed.tar"),
            first=first,
            format="docker",
            compression="none",
            tag=tag,
            load=True,
        )
    return tag


def _inspect_layers(reference: str) -> list[str]:
    attributes = _inspect(reference) or {}
    return list((attributes.get("RootFS") or {}).get("Layers") or [])


def _bar(variants: list[Variant], progress: Any) -> Any:
    if progress is not True:
        return variants
    from tqdm.auto import tqdm

    return tqdm(variants, desc="scenario 4: squash", unit="variant")
