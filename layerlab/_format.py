"""Formatting shared by the command line, plots and reports."""

from __future__ import annotations

import html
import re

# plotly config for every figure layerlab draws: no "Share chart" button,
# which would send the figure's data (an image's paths) to plotly's cloud.
OFFLINE_CONFIG = {
    "displaylogo": False,
    "showSendToCloud": False,
    "plotlyServerURL": "",
}

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB")


def human_bytes(size: float) -> str:
    """Format a byte count with SI units (1 kB = 1000 B), as dive prints sizes."""
    value = float(size)
    for unit in _UNITS:
        if abs(value) < 1000 or unit == _UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} {_UNITS[-1]}"


def share(part: float, whole: float, *, digits: int = 1) -> str:
    """Return ``part`` as a percentage of ``whole`` with ``digits`` decimals.

    A share that is not zero never reads as 0%, nor one short of the whole as
    100%: they read "under 0.1%" and "over 99.9%" (for one decimal).
    """
    if not whole or not part:
        return "0%"
    value = 100 * part / whole
    step = 10.0**-digits
    if 0 < part and round(value, digits) == 0:
        return f"under {step:.{digits}f}%"
    if part < whole and round(value, digits) == 100:
        return f"over {100 - step:.{digits}f}%"
    return f"{value:.{digits}f}%"


def short_command(
    created_by: str | None, instruction: str | None = None, *, width: int = 50
) -> str:
    """Shorten a history command for a label, keeping its keyword first."""
    # Table cells may hold pandas' NA, whose truth value is undefined.
    text = created_by.strip() if isinstance(created_by, str) else ""
    if not isinstance(instruction, str):
        instruction = None
    for prefix in ("/bin/sh -c #(nop) ", "/bin/sh -c "):
        if text.startswith(prefix):
            text = text[len(prefix) :].strip()
            if prefix == "/bin/sh -c ":
                text = f"RUN {text}"
            break
    text = text.removesuffix(" # buildkit")
    if not text:
        text = instruction or "(no history)"
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


# Characters that change how the text around them shows: C0 and C1 controls,
# DEL, and the Unicode bidirectional controls, with which a name such as
# "a\u202etxt.exe" reads as "aexe.txt".
# Invisible characters are escaped too, so that two names that differ only
# by one (a zero-width space, a soft hyphen, a byte order mark) look different.
_HIDDEN_CHARACTERS = re.compile(
    "[\x00-\x1f\x7f-\x9f\xad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]"
)


def visible_text(text: str) -> str:
    """Write control and bidirectional formatting characters as escapes.

    A tab becomes ``\\t`` and a newline ``\\n``, the others ``\\xNN`` or
    ``\\uNNNN``, so that a name taken from an image shows every character
    it has and no character changes how its neighbours show.
    """
    return _HIDDEN_CHARACTERS.sub(_escape_character, text)


def visible_lines(text: str) -> str:
    """Apply :func:`visible_text` to each line of ``text``, keeping line breaks."""
    return "\n".join(visible_text(line) for line in text.split("\n"))


def html_text(text: str) -> str:
    """Escape ``text`` from an image for HTML, with hidden characters visible.

    Line breaks stay, for ``<pre>`` text and tooltips.
    """
    return html.escape(visible_lines(str(text)))


def _escape_character(match: re.Match[str]) -> str:
    character = match.group()
    named = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}.get(character)
    if named:
        return named
    code = ord(character)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def plotly_text(text: str) -> str:
    """Escape ``text`` from an image for plotly, which reads tags in text.

    Only ``&``, ``<`` and ``>`` are escaped, because plotly shows ``&quot;``
    literally. Control and bidirectional characters become visible escapes.
    """
    return html.escape(visible_text(text), quote=False)


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """Return ``count`` with the noun in the singular or plural: ``1 layer``."""
    noun = singular if count == 1 else plural or f"{singular}s"
    return f"{count} {noun}"
