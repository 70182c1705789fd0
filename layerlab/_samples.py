"""The sample images bundled with layerlab, for trying it without Docker.

Each sample is an OCI archive ``layerlab/samples/<name>.tar`` built by the
Docker Engine from ``layerlab/samples/<name>/Dockerfile``, with a
``<name>.json`` description beside it. ``python -m
layerlab.samples.build_samples`` rebuilds them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ._errors import ReferenceNotFoundError

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"

# The order in which the samples tell their story: the problem, then three
# ways out of it.
ORDER = ("rm-later", "combined-run", "multistage", "squashed")
DEFAULT_SAMPLE = "rm-later"


@dataclass(frozen=True)
class Sample:
    """A bundled sample image.

    Attributes:
        name: the name ``sample_path`` and ``layerlab report --sample`` take.
        title: a few words on what the sample shows.
        description: what the Dockerfile does and what to look for.
        path: the OCI archive.
        dockerfile: the Dockerfile it was built from.
    """

    name: str
    title: str
    description: str
    path: Path
    dockerfile: Path

    @property
    def reference(self) -> str:
        """The reference to pass to :func:`layerlab.open_image`."""
        return f"oci-archive:{self.path}"


def list_samples() -> list[Sample]:
    """Return the bundled samples, in the order they are best read."""
    samples = []
    for description in SAMPLES_DIR.glob("*.json"):
        document = json.loads(description.read_text(encoding="utf-8"))
        name = description.stem
        samples.append(
            Sample(
                name=name,
                title=str(document.get("title", "")),
                description=str(document.get("description", "")),
                path=SAMPLES_DIR / f"{name}.tar",
                dockerfile=SAMPLES_DIR / str(document.get("dockerfile", "")),
            )
        )
    return sorted(samples, key=_position)


def _position(sample: Sample) -> tuple[int, str]:
    rank = ORDER.index(sample.name) if sample.name in ORDER else len(ORDER)
    return rank, sample.name


def sample_path(name: str = DEFAULT_SAMPLE) -> Path:
    """Return the archive of sample ``name``; open it with ``open_image``."""
    path = SAMPLES_DIR / f"{name}.tar"
    if "/" in name or not path.is_file():
        known = ", ".join(sample.name for sample in list_samples())
        raise ReferenceNotFoundError(
            f"no sample named {name!r}; the samples are {known}"
        )
    return path


def sample_name(reference: str) -> str | None:
    """Return the sample's name if ``reference`` opens a bundled sample."""
    path = reference.split(":", 1)[1] if ":" in reference else reference
    try:
        resolved = Path(path).resolve()
    except (OSError, ValueError):
        return None
    if resolved.parent == SAMPLES_DIR and resolved.suffix == ".tar":
        return resolved.stem
    return None
