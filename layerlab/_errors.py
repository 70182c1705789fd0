"""The exceptions layerlab raises.

::

    LayerlabError
    ├── ReferenceNotFoundError    the file, directory or image name does not exist
    ├── InvalidReferenceError     the reference has an unknown transport or form
    ├── InvalidImageError         the manifest, index or config is missing or invalid
    │   └── PlatformNotFoundError the image or index lacks the requested platform
    ├── LayerError                a layer blob cannot be read
    │   ├── DigestMismatchError   the bytes do not match their digest
    │   └── InvalidEntryError     a tar entry is invalid (absurd size, bad header)
    ├── EngineError               the Docker Engine is not reachable or failed
    └── OptionError               an option has an invalid value

Every error carries the image reference, and where known the layer and the
tar entry, as attributes, so that a caller can act on them without parsing
the message.
"""

from __future__ import annotations


class LayerlabError(Exception):
    """Root of every error layerlab raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        image: str | None = None,
        layer: str | None = None,
        entry: str | None = None,
    ) -> None:
        self.image = image
        self.layer = layer
        self.entry = entry
        super().__init__(message)

    def __str__(self) -> str:
        where = []
        if self.image:
            where.append(f"image {self.image}")
        if self.layer:
            where.append(f"layer {self.layer}")
        if self.entry:
            where.append(f"entry {self.entry!r}")
        message = super().__str__()
        if not where:
            return message
        return f"{', '.join(where)}: {message}"


class ReferenceNotFoundError(LayerlabError):
    """The file, directory or image named by a reference does not exist."""


class InvalidReferenceError(LayerlabError):
    """A reference has an unknown transport or cannot be parsed."""


class InvalidImageError(LayerlabError):
    """The manifest, index or config of an image is missing or invalid."""


class PlatformNotFoundError(InvalidImageError):
    """A multi-platform index has no image for the requested platform, or a
    single-platform image is for another platform."""


class LayerError(LayerlabError):
    """A layer blob is truncated, corrupt or not a tar stream."""


class DigestMismatchError(LayerError):
    """A blob's bytes do not match the digest that names them."""


class InvalidEntryError(LayerError):
    """A tar entry cannot be accepted, for example a header with an absurd size."""


class EngineError(LayerlabError):
    """The Docker Engine is not reachable, or an engine call failed."""


class OptionError(LayerlabError):
    """An option has an invalid value."""
