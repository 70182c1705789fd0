"""The public surface: what ``layerlab`` exports."""

from __future__ import annotations

import layerlab


def test_all_is_sorted() -> None:
    assert layerlab.__all__ == sorted(layerlab.__all__)


def test_all_names_resolve() -> None:
    for name in layerlab.__all__:
        assert getattr(layerlab, name) is not None, name


def test_public_callables_documented() -> None:
    for name in layerlab.__all__:
        value = getattr(layerlab, name)
        if callable(value) or isinstance(value, type):
            assert value.__doc__, f"{name} has no docstring"


def test_unknown_attribute_raises() -> None:
    try:
        layerlab.no_such_name  # noqa: B018
    except AttributeError as error:
        assert "no_such_name" in str(error)
    else:
        raise AssertionError("expected AttributeError")
