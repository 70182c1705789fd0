"""Progress reporting that the caller chooses: none, tqdm, or its own hook.

The library never decides where output goes; the command line passes a rich
hook and notebooks get ``tqdm.auto`` bars with ``progress=True``.
"""

from __future__ import annotations

from typing import Protocol


class ProgressHook(Protocol):
    """Receives progress of a long operation, in bytes."""

    def start(self, total: int, description: str) -> None: ...

    def advance(self, amount: int) -> None: ...

    def finish(self) -> None: ...


class NoProgress:
    """A hook that shows nothing."""

    def start(self, total: int, description: str) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass

    def finish(self) -> None:
        pass


class TqdmProgress:
    """A ``tqdm.auto`` bar: a widget in notebooks, text in terminals."""

    def __init__(self) -> None:
        self._bar = None

    def start(self, total: int, description: str) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(
            total=total, desc=description, unit="B", unit_scale=True, leave=False
        )

    def advance(self, amount: int) -> None:
        if self._bar is not None:
            self._bar.update(amount)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def resolve(progress: bool | ProgressHook | None) -> ProgressHook:
    """Turn the ``progress`` option into a hook."""
    if progress is True:
        return TqdmProgress()
    if not progress:
        return NoProgress()
    return progress
