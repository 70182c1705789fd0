"""Source: the Docker Engine (``docker-daemon:NAME[:TAG]`` or a bare name).

The engine is reached through the docker SDK, which honours ``DOCKER_HOST``
(Podman's Docker-compatible socket works the same way). The image is
exported with the engine's ``GET /images/{name}/get`` (what ``docker save``
uses) into a temporary file that is deleted when the image is closed, and
read as a docker archive.
"""

from __future__ import annotations

import gc
import os
import tempfile
import warnings
from typing import Any

from ._docker_archive import open_docker_archive
from ._errors import EngineError, ReferenceNotFoundError
from ._platform import check_config_platform
from ._source import ImageSource


def connect():  # type: ignore[no-untyped-def]
    """Return a docker SDK client, or raise EngineError naming the fix."""
    import docker
    import docker.errors

    try:
        client = docker.from_env()
    except docker.errors.DockerException as error:
        failure = _first_line(error)
    else:
        return client
    _collect_leaked_socket()
    host = os.environ.get("DOCKER_HOST", "the default socket")
    raise EngineError(
        f"cannot reach the Docker Engine at {host} ({failure}); "
        "start the engine or set DOCKER_HOST"
    )


def _collect_leaked_socket() -> None:
    # The docker SDK (7.1) leaks its socket when the version probe in its
    # constructor fails. Collecting it here, quietly, keeps a ResourceWarning
    # from surfacing later at an unrelated point.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def _first_line(error: BaseException) -> str:
    return (
        str(error).strip().splitlines()[0]
        if str(error).strip()
        else type(error).__name__
    )


def open_daemon_image(
    name: str, *, reference: str, platform: str | None, client: Any = None
) -> ImageSource:
    """Export ``name`` from the engine and open it as a docker archive.

    ``client`` is a docker SDK client to use and close, or None to connect.
    Docker's classic image store keeps one platform per image, so a
    requested ``platform`` is checked against the one the engine reports,
    before the export. NOTE: untested with the containerd image store
    (Docker 24 and later, opt-in), where one name can hold several platforms.
    """
    import docker.errors

    if client is None:
        client = connect()
    try:
        attributes = client.images.get(name).attrs
        check_config_platform(
            _platform_fields(attributes), platform, reference=reference
        )
        chunks = client.api.get_image(name)
        spool = tempfile.NamedTemporaryFile(
            prefix="layerlab-", suffix=".tar", delete=False
        )
        with spool:
            for chunk in chunks:
                spool.write(chunk)
    except docker.errors.ImageNotFound:
        raise ReferenceNotFoundError(
            "image not found in the Docker Engine", image=reference
        ) from None
    except docker.errors.DockerException as error:
        raise EngineError(
            f"export failed: {_first_line(error)}", image=reference
        ) from None
    finally:
        client.close()

    def remove() -> None:
        os.unlink(spool.name)

    try:
        source = open_docker_archive(
            spool.name, reference=reference, name=None, platform=None
        )
    except BaseException:
        remove()
        raise
    source.cleanup = remove
    return source


def _platform_fields(attributes: dict[str, Any]) -> dict[str, Any]:
    # The engine's image inspect (GET /images/{name}/json) spells the config's
    # os, architecture and variant with capitals.
    return {
        "os": attributes.get("Os"),
        "architecture": attributes.get("Architecture"),
        "variant": attributes.get("Variant"),
    }
