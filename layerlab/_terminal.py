"""Text for the terminal: strings from images shown as plain, visible text.

rich reads ``[tags]`` as markup and ``:name:`` as emoji in plain strings,
and passes escape sequences through to the terminal. A :class:`rich.text.Text`
made by :func:`plain` is read neither way, and
:func:`~layerlab._format.visible_text` has turned every control and
bidirectional character in it into a printable escape first, as the HTML
report shows them. The module also formats ratios and counts for messages.
"""

from __future__ import annotations

import math

from rich.text import Text

from ._format import visible_lines, visible_text


def plain(text: object, style: str = "") -> Text:
    """Return ``text`` as a rich Text that rich prints literally."""
    return Text(visible_text(str(text)), style=style)


def plain_lines(text: object, style: str = "") -> Text:
    """Return ``text`` as :func:`plain` does, but keep its line breaks."""
    return Text(visible_lines(str(text)), style=style)


def root_path(path: str) -> str:
    """Return a path of the image's filesystem written from the root, ``/a/b``."""
    return "/" + path.lstrip("/")


def percent(ratio: float, digits: int = 2) -> str:
    """Format a ratio as a percentage, as the HTML report does.

    NaN (dive's 0 / 0) reads ``n/a`` and an infinite ratio ``∞``.
    """
    if math.isnan(ratio):
        return "n/a"
    if math.isinf(ratio):
        return "∞"
    return f"{ratio:.{digits}%}"
