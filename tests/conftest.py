"""Fixtures shared by the tests: the Docker Engine and the images built with it.

Tests that need the engine carry the ``engine`` marker or use the ``engine``
or ``docker_client`` fixture. Without an engine (or without skopeo, dive or
docker-squash) they are skipped, unless ``CI=true`` or
``LAYERLAB_REQUIRE_ENGINE=1``, where they fail instead, so that a CI run
cannot pass by skipping them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from engine import (
    BuiltImage,
    build_image,
    engine_problem,
    engine_required,
    ensure_busybox_base,
)


@functools.cache
def _engine_problem() -> str | None:
    return engine_problem()


def require_engine() -> None:
    """Skip the calling test when engine tests cannot run, or fail it in CI."""
    problem = _engine_problem()
    if problem is None:
        return
    if engine_required():
        pytest.fail(
            f"engine tests cannot run: {problem} (CI or LAYERLAB_REQUIRE_ENGINE=1 "
            "makes this a failure instead of a skip)",
            pytrace=False,
        )
    pytest.skip(f"engine tests need a Docker Engine and its tools: {problem}")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("engine") is not None:
        require_engine()


@pytest.fixture(scope="session", autouse=True)
def _layer_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # Keep the tests' parsed layers out of the user's cache directory.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAYERLAB_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A docker SDK client from the environment (DOCKER_HOST or the socket)."""
    require_engine()
    import docker

    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(scope="session")
def engine(docker_client: Any) -> Any:
    """The docker SDK client, for tests that only need the engine to be there."""
    return docker_client


@pytest.fixture(scope="session")
def busybox_base(docker_client: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Tag of the local busybox base image, imported once if missing."""
    return ensure_busybox_base(docker_client, tmp_path_factory.mktemp("base"))


@pytest.fixture(scope="session", name="test_image")
def _test_image(
    docker_client: Any, busybox_base: str, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], BuiltImage]:
    """Build tests/images/NAME once per session and return its archives."""
    workdir = tmp_path_factory.mktemp("images")
    built: dict[str, BuiltImage] = {}

    def build(name: str) -> BuiltImage:
        if name not in built:
            built[name] = build_image(docker_client, name, workdir)
        return built[name]

    return build


@pytest.fixture(scope="session")
def opened_image(
    test_image: Callable[[str], BuiltImage],
) -> Iterator[Callable[[str, str], Any]]:
    """Open a test image with layerlab from one source, once per session.

    The source is a key of ``BuiltImage.references``. Layers are read without
    the on-disk cache, so every source's reader runs.
    """
    import layerlab

    opened: dict[tuple[str, str], Any] = {}

    def open_from(name: str, source: str) -> Any:
        key = (name, source)
        if key not in opened:
            reference = test_image(name).references[source]
            opened[key] = layerlab.open_image(reference, cache=False)
        return opened[key]

    yield open_from
    for image in opened.values():
        image.close()
