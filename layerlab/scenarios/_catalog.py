"""The four scenarios of the talk, their variants and the talk's figures.

Each scenario directory under ``files/`` contains one ``Dockerfile.<variant>``
per variant. Their build context is the Node.js app in ``files/app``
(``server.js``, ``package.json``, ``package-lock.json``), which the builder
copies beside the Dockerfiles. By hand, from the ``files`` directory::

    docker build --network host -f build-cache/Dockerfile.deps-first app
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .._errors import OptionError

FILES_DIR = Path(__file__).resolve().parent / "files"
APP_DIR = FILES_DIR / "app"
TAG_REPOSITORY = "layerlab-scenario"


@dataclass(frozen=True)
class Edit:
    """A change to one file of the build context before a rebuild.

    ``apply`` takes the file's text and returns the new text. It puts a time
    stamp into the change, so every run makes content that no earlier build
    has cached, as a real edit does.
    """

    path: str
    summary: str
    apply: Callable[[str], str]


@dataclass(frozen=True)
class Variant:
    """One Dockerfile of a scenario.

    Attributes:
        name: the variant's name, also the tag of its image.
        summary: what the variant does, in a few words.
        edit: the change made before the rebuild; None when the scenario
            measures no rebuild.
        slide_bytes: the size the talk measured, in bytes (1 MB = 10**6 B,
            as ``docker images`` prints); None when it gave none.
        slide_text: the talk's figure as it was written on the slide.
    """

    name: str
    summary: str
    edit: Edit | None = None
    slide_bytes: int | None = None
    slide_text: str | None = None


@dataclass(frozen=True)
class Scenario:
    """A lesson of the talk with the Dockerfile variants that show it.

    Attributes:
        number: the scenario's position in the talk (1 to 4).
        name: the directory under ``files/`` and the repository of its tags.
        title: a few words for headings.
        lesson: the point the scenario makes, in one or two sentences.
        variants: the variants, in the order they are built and shown.
        bases: the base images the Dockerfiles start from.
        notebook: the notebook that walks through the scenario.
        needs: the scenarios whose images this one starts from.
    """

    number: int
    name: str
    title: str
    lesson: str
    variants: tuple[Variant, ...]
    bases: tuple[str, ...]
    notebook: str
    needs: tuple[str, ...] = field(default=())

    @property
    def directory(self) -> Path:
        """The directory of the scenario's Dockerfiles."""
        return FILES_DIR / self.name

    def variant(self, name: str) -> Variant:
        """Return the variant called ``name``; raise OptionError if unknown."""
        for variant in self.variants:
            if variant.name == name:
                return variant
        known = ", ".join(variant.name for variant in self.variants)
        raise OptionError(
            f"scenario {self.name!r} has no variant {name!r}; its variants: {known}"
        )

    def dockerfile(self, variant: str) -> Path:
        """Return the path of the Dockerfile of ``variant``."""
        self.variant(variant)
        return self.directory / f"Dockerfile.{variant}"

    def tag(self, variant: str) -> str:
        """Return the image tag the builder gives ``variant``."""
        return f"{TAG_REPOSITORY}/{self.name}:{variant}"


def _stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _edit_greeting(text: str) -> str:
    old = 'res.send("Hello from the layerlab scenarios\\n");'
    if old not in text:
        raise OptionError("server.js no longer contains the greeting the edit changes")
    return text.replace(
        old, f'res.send("Hello from the layerlab scenarios, edited {_stamp()}\\n");'
    )


def _edit_install_line(text: str) -> str:
    old = "apt-get install -y --no-install-recommends jq"
    if old not in text:
        raise OptionError("the Dockerfile no longer contains the install line to edit")
    # sh reads the rest of the line after " #" as a comment, so the stamp
    # changes the instruction (and its cache key) without changing the step.
    return text.replace(old, f"{old} tree  # edited {_stamp()}")


SERVER_EDIT = Edit(
    path="server.js",
    summary="change the greeting in server.js",
    apply=_edit_greeting,
)


def _install_edit(variant: str) -> Edit:
    return Edit(
        path=f"Dockerfile.{variant}",
        summary="add tree to the apt-get install line",
        apply=_edit_install_line,
    )


BUILD_CACHE = Scenario(
    number=1,
    name="build-cache",
    title="Order steps for the build cache",
    lesson=(
        "Copy the package manifests and run npm install before copying the "
        "rest of the app, so an edit to the code reuses the installed "
        "dependencies from the build cache. Keep apt-get update in the RUN "
        "step of its apt-get install, or the cache serves a stale package index."
    ),
    variants=(
        Variant("copy-all-first", "COPY . . before npm install", SERVER_EDIT),
        Variant("deps-first", "COPY the manifests, npm install, then COPY . .", SERVER_EDIT),
        Variant(
            "update-separate",
            "apt-get update in its own RUN step",
            _install_edit("update-separate"),
        ),
        Variant(
            "update-combined",
            "apt-get update && apt-get install in one RUN step",
            _install_edit("update-combined"),
        ),
    ),
    bases=("node:22",),
    notebook="10-build-cache.ipynb",
)  # fmt: skip

MULTISTAGE = Scenario(
    number=2,
    name="multistage",
    title="Multistage builds",
    lesson=(
        "Build with the compilers, headers and devDependencies in one stage, "
        "then copy the app and its production dependencies into a slim "
        "runtime stage: the image ships none of the build tools."
    ),
    variants=(
        Variant(
            "single-stage",
            "node:22 with the cairo, jpeg, gif and pango dev packages",
            SERVER_EDIT,
            slide_bytes=1_300_000_000,
            slide_text="1.3 GB",
        ),
        Variant(
            "multistage",
            "build stage, then node:22-slim with production dependencies",
            SERVER_EDIT,
            slide_bytes=300_000_000,
            slide_text="< 300 MB",
        ),
    ),
    bases=("node:22", "node:22-slim"),
    notebook="20-multistage.ipynb",
)

RM_DOES_NOT_SHRINK = Scenario(
    number=3,
    name="rm-does-not-shrink",
    title="The rm that does not shrink",
    lesson=(
        "Deleting files in a later RUN step hides them but leaves their bytes "
        "in the layer that wrote them. Delete them in the step that made them."
    ),
    variants=(
        Variant(
            "no-rm",
            "download, unzip and install the AWS CLI; keep the installer",
            slide_bytes=777_000_000,
            slide_text="777 MB",
        ),
        Variant(
            "rm-separate",
            "the same, then rm -rf the installer in a separate RUN step",
            slide_bytes=777_000_000,
            slide_text="777 MB",
        ),
        Variant(
            "rm-same-run",
            "rm -rf the installer in the RUN step that made it",
            slide_bytes=506_000_000,
            slide_text="506 MB",
        ),
    ),
    bases=("node:22-slim",),
    notebook="30-rm-does-not-shrink.ipynb",
)

SQUASH = Scenario(
    number=4,
    name="squash",
    title="Squashing layers",
    lesson=(
        "Squashing merges layers into one and drops the bytes that later "
        "layers hid, but the squashed layer shares nothing with other images "
        "and downloads as one large blob."
    ),
    variants=(
        Variant(
            "original",
            "the rm-separate image of the previous scenario",
            slide_bytes=770_000_000,
            slide_text="~770 MB",
        ),
        Variant(
            "layerlab",
            "every layer merged into one by layerlab.squash",
            slide_bytes=480_000_000,
            slide_text="~480 MB",
        ),
        Variant(
            "docker-squash",
            "every layer merged into one by docker-squash",
            slide_bytes=480_000_000,
            slide_text="~480 MB",
        ),
        Variant(
            "layerlab-above-base",
            "only the layers above node:22-slim merged, by layerlab.squash",
        ),
    ),
    bases=("node:22-slim",),
    notebook="40-squash.ipynb",
    needs=("rm-does-not-shrink",),
)

SCENARIOS = (BUILD_CACHE, MULTISTAGE, RM_DOES_NOT_SHRINK, SQUASH)


def list_scenarios() -> list[Scenario]:
    """Return the scenarios in the order of the talk."""
    return list(SCENARIOS)


def get_scenario(name: str | int) -> Scenario:
    """Return the scenario with this name or number (1 to 4).

    The notebook's name (``10-build-cache``) works too.
    """
    for scenario in SCENARIOS:
        names = {
            scenario.name,
            str(scenario.number),
            scenario.notebook.removesuffix(".ipynb"),
        }
        if str(name) in names:
            return scenario
    known = ", ".join(f"{s.number} {s.name}" for s in SCENARIOS)
    raise OptionError(f"no scenario {name!r}; the scenarios are {known}")
