"""Platforms (``os/architecture[/variant]``): parsing, normalising, matching.

Names are normalised the way containerd's ``platforms`` package does it
(database.go, ``normalizeArch``), so that ``aarch64`` and ``arm64/v8`` both
read as ``arm64``, ``x86_64`` as ``amd64`` and ``armhf`` as ``arm/v7``.
"""

from __future__ import annotations

import platform as platform_module
import re
from dataclasses import dataclass
from typing import Any

from ._errors import OptionError, PlatformNotFoundError

# The operating systems of containerd's isKnownOS (database.go), which decide
# whether a one-part platform such as "linux" is an OS or an architecture.
KNOWN_OS = frozenset(
    {
        "aix",
        "android",
        "darwin",
        "dragonfly",
        "freebsd",
        "hurd",
        "illumos",
        "ios",
        "js",
        "linux",
        "nacl",
        "netbsd",
        "openbsd",
        "plan9",
        "solaris",
        "windows",
        "zos",
    }
)


# The GOOS and GOARCH values of Go's internal/syslist (KnownOS and KnownArch),
# to which the OCI image spec refers for a platform's os and architecture.
# parse_platform rejects other values, after normalising them.
GO_OS = KNOWN_OS | {"wasip1"}
GO_ARCHITECTURES = frozenset(
    {
        "386",
        "amd64",
        "amd64p32",
        "arm",
        "armbe",
        "arm64",
        "arm64be",
        "loong64",
        "mips",
        "mipsle",
        "mips64",
        "mips64le",
        "mips64p32",
        "mips64p32le",
        "ppc",
        "ppc64",
        "ppc64le",
        "riscv",
        "riscv64",
        "s390",
        "s390x",
        "sparc",
        "sparc64",
        "wasm",
    }
)

# containerd's specifierRe (platforms.go), applied here to lowercase text.
_VARIANT = re.compile(r"[a-z0-9_.-]+")

_FORMS = "os/architecture[/variant], for example linux/amd64 or linux/arm64/v8"


@dataclass(frozen=True)
class Platform:
    """A normalised platform. ``variant`` is empty where none applies."""

    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text


def normalize(os_name: str, architecture: str, variant: str = "") -> Platform:
    """Return the platform in containerd's normal form."""
    os_name = os_name.lower()
    if os_name == "macos":
        os_name = "darwin"
    architecture, variant = _normalize_architecture(
        architecture.lower(), variant.lower()
    )
    return Platform(os_name, architecture, variant)


def _normalize_architecture(architecture: str, variant: str) -> tuple[str, str]:
    if architecture == "i386":
        return "386", ""
    if architecture in ("x86_64", "x86-64", "amd64"):
        return "amd64", "" if variant == "v1" else variant
    if architecture in ("aarch64", "arm64"):
        return "arm64", "" if variant in ("8", "v8") else variant
    if architecture == "armhf":
        return "arm", "v7"
    if architecture == "armel":
        return "arm", "v6"
    if architecture == "arm":
        if variant in ("", "7"):
            return "arm", "v7"
        if variant in ("5", "6", "8"):
            return "arm", f"v{variant}"
    return architecture, variant


def parse_platform(text: str) -> Platform:
    """Parse ``os/architecture[/variant]``, or a lone OS or architecture.

    A lone OS takes this machine's architecture, and a lone architecture the
    OS ``linux``, as containerd's ``platforms.Parse`` does on Linux. Raises
    OptionError for malformed text, and for an OS or architecture that is not
    in Go's lists after normalising.
    """
    parts = text.strip().split("/")
    if not all(parts) or len(parts) > 3:
        raise OptionError(f"invalid platform {text!r}: expected {_FORMS}")
    if len(parts) == 1:
        if parts[0].lower() in KNOWN_OS:
            host = host_platform()
            return normalize(parts[0], host.architecture, host.variant)
        parsed = normalize("linux", parts[0])
    else:
        parsed = normalize(*parts)
    _check_known(parsed, text)
    return parsed


def _check_known(parsed: Platform, text: str) -> None:
    if parsed.os not in GO_OS:
        known = ", ".join(sorted(GO_OS))
        raise OptionError(
            f"invalid platform {text!r}: unknown operating system {parsed.os!r}. "
            f"Expected {_FORMS}, where the operating system is one of {known}"
        )
    if parsed.architecture not in GO_ARCHITECTURES:
        known = ", ".join(sorted(GO_ARCHITECTURES))
        raise OptionError(
            f"invalid platform {text!r}: unknown architecture "
            f"{parsed.architecture!r}. Expected {_FORMS}, where the architecture "
            f"is one of {known}"
        )
    if parsed.variant and not _VARIANT.fullmatch(parsed.variant):
        raise OptionError(
            f"invalid platform {text!r}: invalid variant {parsed.variant!r}. "
            f"Expected {_FORMS}, where a variant such as v7 is made of letters, "
            "digits, '_', '.' and '-'"
        )


def names_variant(text: str) -> bool:
    """Return True when a platform text names a variant, directly or by an
    alias such as ``armhf``."""
    parts = text.strip().lower().split("/")
    return len(parts) == 3 or parts[-1] in ("armhf", "armel")


def host_platform() -> Platform:
    """Return this machine's platform, with the OS taken as ``linux``."""
    machine = platform_module.machine().lower()
    architecture, _, variant = {
        "armv7l": "arm/v7",
        "armv6l": "arm/v6",
        "i686": "386",
    }.get(machine, machine).partition("/")
    return normalize("linux", architecture, variant)


def descriptor_platform(descriptor: dict[str, Any]) -> Platform | None:
    """Return the platform of an index entry, or None when it names none."""
    described = descriptor.get("platform")
    if not isinstance(described, dict) or not described.get("architecture"):
        return None
    return normalize(
        str(described.get("os", "")),
        str(described.get("architecture", "")),
        str(described.get("variant", "")),
    )


def same_os_and_architecture(first: Platform, second: Platform) -> bool:
    """Return True when two platforms differ at most in their variants."""
    return (first.os, first.architecture) == (second.os, second.architecture)


def check_config_platform(
    config: dict[str, Any], platform: str | None, *, reference: str
) -> None:
    """Raise PlatformNotFoundError when a single-platform image's config
    names another platform than ``platform``.

    A config's ``variant`` is optional, so the variants are compared only
    when the config states one.
    """
    if platform is None:
        return
    requested = parse_platform(platform)
    os_name = str(config.get("os") or "")
    architecture = str(config.get("architecture") or "")
    if not os_name or not architecture:
        raise PlatformNotFoundError(
            f"cannot check the requested platform {requested}: the image config "
            "names no os and architecture; open it without a platform",
            image=reference,
        )
    variant = str(config.get("variant") or "")
    actual = normalize(os_name, architecture, variant)
    if variant:
        same = requested == actual
    else:
        same = same_os_and_architecture(requested, actual)
    if not same:
        raise PlatformNotFoundError(
            f"the requested platform is {requested} but the image is for {actual} "
            "(from its config); open it without a platform to read it anyway",
            image=reference,
        )
