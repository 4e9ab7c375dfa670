"""The two kinds of failure a parse can end in: the file's fault, or the installation's."""

from __future__ import annotations


class ParseError(Exception):
    """The file cannot be turned into chunks. ``str(err)`` is shown to a corpus admin.

    ``code`` is a stable machine-readable reason: "empty", "unsupported", "corrupt",
    "encrypted", "no_text", "hostile", "no_ocr".
    """

    def __init__(self, message: str, *, code: str = "corrupt") -> None:
        super().__init__(message)
        self.code = code


class OfflineViolation(RuntimeError):
    """unstructured (or pandoc) was about to use the network. Never a ParseError: the
    installation is at fault, not the document."""


class ConfigurationError(RuntimeError):
    """A parsing setting has a value this package does not know. Never a ParseError."""
