"""Build Dockerfiles through the Docker Engine and record each step.

Builds go through the docker SDK's low-level ``APIClient.build``, which drives
the engine's legacy builder (the SDK opens no BuildKit session). Its output
stream has a ``Step N/M : INSTRUCTION`` line for each instruction, then
`` ---> Using cache`` when the step's result came from the build cache, the
output of a ``RUN`` step, and `` ---> ID`` with the image the step produced.
A step's duration is the time between its step line and the next one, taken
as the lines arrive, so it includes the engine's commit of the layer.

HTTPS behind a TLS-inspecting proxy: when the Dockerfile declares
``ARG LAYERLAB_EXTRA_CA_URL`` and ``extra_ca`` is true, :func:`build` serves
the host's extra certificate authorities on 127.0.0.1 for the length of the
build and passes their URL in that argument. The ``RUN`` step that needs
them fetches them, uses them and deletes them, so no layer keeps them, and
the image history records only the URL (see ``_certs.serve_extra_cas``)::

    ARG LAYERLAB_EXTRA_CA_URL
    RUN node -e "fetch(process.argv[1]).then(r => r.text()).then(t => \\
          require('fs').writeFileSync('/tmp/extra-ca.pem', t))" \\
          "$LAYERLAB_EXTRA_CA_URL" \\
     && NODE_EXTRA_CA_CERTS=/tmp/extra-ca.pem npm install \\
     && rm /tmp/extra-ca.pem
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pandas as pd

from . import _certs
from ._daemon import connect
from ._errors import EngineError, OptionError
from ._progress import ProgressHook, resolve

logger = logging.getLogger("layerlab")

CA_URL_ARG = "LAYERLAB_EXTRA_CA_URL"

STEP_COLUMNS = [
    "step",
    "instruction",
    "keyword",
    "cached",
    "seconds",
    "image_id",
    "output",
]

_STEP_LINE = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_IMAGE_LINE = re.compile(r"^ ---> ([0-9a-f]{12,64})$")
_RUNNING_LINE = re.compile(r"^ ---> Running in [0-9a-f]+$")
_BUILT_LINE = re.compile(r"^Successfully built ([0-9a-f]+)$")
# The legacy builder wraps a RUN step's standard error in red (SGR codes).
_COLOUR_CODE = re.compile(r"\x1b\[[0-9;]*m")
_CA_ARG_DECLARED = re.compile(
    rf"^\s*ARG\s+{CA_URL_ARG}(\s|=|$)", re.MULTILINE | re.IGNORECASE
)

# How many output lines of the failing step an EngineError quotes.
ERROR_TAIL_LINES = 20


@dataclass
class BuildResult:
    """One build: the image it produced and a table of its steps.

    ``steps`` has one row per Dockerfile instruction, in the columns of
    ``STEP_COLUMNS``. ``cached`` is missing (``pd.NA``) for ``FROM``, which
    resolves an image instead of producing one. ``seconds`` is the wall time
    of the whole request, ``context_seconds`` the part before the first
    step, which is mostly sending the build context.
    """

    tag: str
    image_id: str
    steps: pd.DataFrame
    seconds: float
    context_seconds: float
    warnings: list[str] = field(default_factory=list)

    @property
    def cached_steps(self) -> int:
        """Number of steps whose result came from the build cache."""
        return int(self.steps["cached"].fillna(False).astype(bool).sum())

    @property
    def rebuilt_steps(self) -> int:
        """Number of steps that ran, ``FROM`` not counted."""
        return int(self.steps["cached"].eq(False).fillna(False).sum())

    @property
    def totals(self) -> dict[str, float | int]:
        """Step counts and times of the build, in seconds."""
        return {
            "steps": len(self.steps),
            "cached_steps": self.cached_steps,
            "rebuilt_steps": self.rebuilt_steps,
            "step_seconds": float(self.steps["seconds"].sum()),
            "context_seconds": self.context_seconds,
            "seconds": self.seconds,
        }


@dataclass
class RebuildResult:
    """A build, an edit of one source file, and the rebuild that followed."""

    path: str
    before: BuildResult
    after: BuildResult

    @property
    def first_rebuilt_step(self) -> int | None:
        """Number of the first step that missed the cache after the edit."""
        rebuilt = self.after.steps[self.after.steps["cached"].eq(False).fillna(False)]
        return None if rebuilt.empty else int(rebuilt["step"].iloc[0])

    @property
    def seconds(self) -> float:
        """Wall time of the rebuild after the edit."""
        return self.after.seconds


@dataclass
class _Step:
    number: int
    total: int
    instruction: str
    started: float
    cached: bool = False
    image_id: str | None = None
    ended: float | None = None
    output: list[str] = field(default_factory=list)


class _StreamParser:
    """Turns the decoded build stream into step records as messages arrive."""

    def __init__(self, progress: ProgressHook, description: str) -> None:
        self.steps: list[_Step] = []
        self.image_id: str | None = None
        self.warnings: list[str] = []
        self.error: str | None = None
        self.first_step_at: float | None = None
        self._partial = ""
        self._progress = progress
        self._description = description

    def feed(self, message: dict, now: float) -> None:
        if "error" in message:
            self._finish_step(now)
            self.error = str(message.get("error", "")).strip()
            return
        aux = message.get("aux")
        if isinstance(aux, dict) and "ID" in aux:
            self.image_id = aux["ID"]
        text = message.get("stream")
        if not text:
            return
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self._line(line.rstrip("\r"), now)

    def close(self, now: float) -> None:
        if self._partial:
            self._line(self._partial, now)
            self._partial = ""
        self._finish_step(now)

    def _line(self, line: str, now: float) -> None:
        line = _COLOUR_CODE.sub("", line)
        step_match = _STEP_LINE.match(line)
        if step_match:
            self._start_step(step_match, now)
            return
        current = self.steps[-1] if self.steps else None
        if line.startswith("[Warning]"):
            self.warnings.append(line)
        elif _BUILT_LINE.match(line):
            self._finish_step(now)
        elif current is None or current.ended is not None:
            return
        elif line == " ---> Using cache":
            current.cached = True
        elif _IMAGE_LINE.match(line):
            current.image_id = _IMAGE_LINE.match(line).group(1)  # type: ignore[union-attr]
        elif not _RUNNING_LINE.match(line) and not line.startswith(
            "Removing intermediate container"
        ):
            current.output.append(line)

    def _start_step(self, match: re.Match[str], now: float) -> None:
        self._finish_step(now)
        number, total = int(match.group(1)), int(match.group(2))
        if self.first_step_at is None:
            self.first_step_at = now
            self._progress.start(total, self._description)
        self.steps.append(_Step(number, total, match.group(3).strip(), now))

    def _finish_step(self, now: float) -> None:
        if self.steps and self.steps[-1].ended is None:
            self.steps[-1].ended = now
            self._progress.advance(1)

    def table(self) -> pd.DataFrame:
        rows = [_row(step) for step in self.steps]
        steps = pd.DataFrame(rows, columns=STEP_COLUMNS)
        steps["step"] = steps["step"].astype("int64")
        steps["cached"] = steps["cached"].astype("boolean")
        steps["seconds"] = steps["seconds"].astype("float64")
        return steps


def _row(step: _Step) -> dict[str, object]:
    keyword = step.instruction.split(maxsplit=1)[0].upper() if step.instruction else ""
    ended = step.ended if step.ended is not None else step.started
    return {
        "step": step.number,
        "instruction": step.instruction,
        "keyword": keyword,
        "cached": pd.NA if keyword == "FROM" else step.cached,
        "seconds": ended - step.started,
        "image_id": step.image_id,
        "output": "\n".join(step.output),
    }


def build(
    context_dir: str | os.PathLike[str],
    *,
    tag: str,
    dockerfile: str = "Dockerfile",
    buildargs: dict[str, str] | None = None,
    network_mode: str = "host",
    no_cache: bool = False,
    pull: bool = False,
    extra_ca: bool = True,
    progress: bool | ProgressHook | None = None,
) -> BuildResult:
    """Build ``context_dir`` with the engine's legacy builder and tag it ``tag``.

    ``dockerfile`` is relative to ``context_dir`` unless absolute.
    ``network_mode`` is the network of the ``RUN`` steps; the default, host
    networking, is the one that reaches 127.0.0.1 and so the extra CA URL.
    With ``extra_ca`` true and ``ARG LAYERLAB_EXTRA_CA_URL`` declared in the
    Dockerfile, the host's extra CAs are served for the build (see the module
    docstring). Raises EngineError naming the failing step and quoting the
    end of its output when the build fails.
    """
    context = os.fspath(context_dir)
    dockerfile_path = dockerfile
    if not os.path.isabs(dockerfile_path):
        dockerfile_path = os.path.join(context, dockerfile)
    dockerfile_text = _read_dockerfile(dockerfile_path, tag)
    arguments = dict(buildargs or {})

    serve = (
        extra_ca
        and CA_URL_ARG not in arguments
        and _CA_ARG_DECLARED.search(dockerfile_text) is not None
    )
    if serve and network_mode != "host":
        logger.warning(
            "%s is served on 127.0.0.1, which RUN steps reach only with "
            "network_mode='host', not %r",
            CA_URL_ARG,
            network_mode,
        )
    if not serve:
        return _run_build(
            context, dockerfile, tag, arguments, network_mode, no_cache, pull, progress
        )
    with _certs.serve_extra_cas(_certs.host_extra_cas()) as url:
        arguments[CA_URL_ARG] = url
        return _run_build(
            context, dockerfile, tag, arguments, network_mode, no_cache, pull, progress
        )


def _read_dockerfile(path: str, tag: str) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except OSError as error:
        raise OptionError(
            f"cannot read the Dockerfile {path}: {error.strerror}", image=tag
        ) from None


def _run_build(
    context: str,
    dockerfile: str,
    tag: str,
    buildargs: dict[str, str],
    network_mode: str,
    no_cache: bool,
    pull: bool,
    progress: bool | ProgressHook | None,
) -> BuildResult:
    import docker.errors
    import requests.exceptions

    client = connect()
    hook = resolve(progress)
    parser = _StreamParser(hook, f"building {tag}")
    started = time.monotonic()
    try:
        stream = client.api.build(
            path=context,
            dockerfile=dockerfile,
            tag=tag,
            buildargs=buildargs,
            network_mode=network_mode,
            nocache=no_cache,
            pull=pull,
            rm=True,
            forcerm=True,
            decode=True,
            timeout=None,
        )
        _consume(stream, parser)
    except docker.errors.APIError as error:
        raise EngineError(
            f"the engine rejected the build: {error.explanation or error}",
            image=tag,
        ) from None
    except requests.exceptions.RequestException as error:
        raise EngineError(f"the build request failed: {error}", image=tag) from None
    finally:
        parser.close(time.monotonic())
        hook.finish()
        client.close()

    ended = time.monotonic()
    if parser.error is not None:
        raise _step_error(parser, tag)
    return _result(parser, tag, started, ended)


def _consume(stream: Iterable[dict], parser: _StreamParser) -> None:
    for message in stream:
        parser.feed(message, time.monotonic())


def _step_error(parser: _StreamParser, tag: str) -> EngineError:
    if not parser.steps:
        return EngineError(f"the build failed: {parser.error}", image=tag)
    step = parser.steps[-1]
    tail = "\n".join(step.output[-ERROR_TAIL_LINES:])
    message = (
        f"the build failed at step {step.number}/{step.total} "
        f"({step.instruction}): {parser.error}"
    )
    if tail:
        message += f"\nlast lines of its output:\n{tail}"
    return EngineError(message, image=tag)


def _result(
    parser: _StreamParser, tag: str, started: float, ended: float
) -> BuildResult:
    first_step_at = parser.first_step_at if parser.first_step_at else ended
    if parser.image_id is None:
        raise EngineError("the build ended without reporting an image id", image=tag)
    for warning in parser.warnings:
        logger.warning("build of %s: %s", tag, warning)
    return BuildResult(
        tag=tag,
        image_id=parser.image_id,
        steps=parser.table(),
        seconds=ended - started,
        context_seconds=first_step_at - started,
        warnings=parser.warnings,
    )


def rebuild_after_edit(
    context_dir: str | os.PathLike[str],
    path: str,
    edit: str | Callable[[str], str],
    *,
    tag: str,
    dockerfile: str = "Dockerfile",
    buildargs: dict[str, str] | None = None,
    network_mode: str = "host",
    extra_ca: bool = True,
    progress: bool | ProgressHook | None = None,
) -> RebuildResult:
    """Build, edit one source file, build again, and return both builds.

    The builds run on a temporary copy of ``context_dir``, so the caller's
    files are never changed. ``path`` is relative to the context. ``edit``
    is a function from the old text of the file to the new one, or a string
    to append to it. The first build fills the build cache, so the second one
    shows what the edit alone costs: the steps from the first one that uses
    the file onward miss the cache.
    """
    relative = os.path.normpath(path)
    if os.path.isabs(relative) or relative.split(os.sep)[0] == "..":
        raise OptionError(f"path {path!r} must be relative to the build context")
    options = {
        "tag": tag,
        "dockerfile": dockerfile,
        "buildargs": buildargs,
        "network_mode": network_mode,
        "extra_ca": extra_ca,
        "progress": progress,
    }
    with tempfile.TemporaryDirectory(prefix="layerlab-context-") as scratch:
        copy = os.path.join(scratch, "context")
        shutil.copytree(os.fspath(context_dir), copy, symlinks=True)
        before = build(copy, **options)  # type: ignore[arg-type]
        _apply_edit(os.path.join(copy, relative), edit)
        after = build(copy, **options)  # type: ignore[arg-type]
    return RebuildResult(path=relative, before=before, after=after)


def _apply_edit(file_path: str, edit: str | Callable[[str], str]) -> None:
    try:
        with open(file_path, encoding="utf-8") as file:
            text = file.read()
    except OSError as error:
        raise OptionError(
            f"cannot read {file_path} to edit it: {error.strerror}"
        ) from None
    text = edit(text) if callable(edit) else text + edit
    with open(file_path, "w", encoding="utf-8") as file:
        file.write(text)
