"""Formatting shared by the command line, plots and reports."""

from __future__ import annotations

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB")


def human_bytes(size: float) -> str:
    """Format a byte count with SI units (1 kB = 1000 B), as dive prints sizes."""
    value = float(size)
    for unit in _UNITS:
        if abs(value) < 1000 or unit == _UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} {_UNITS[-1]}"


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
