"""Errors and warnings of the pcap backend."""

from __future__ import annotations

from tio_core.errors import TioError


class CaptureFormatError(TioError, ValueError):
    """A capture file is not a well-formed pcap/pcapng file.

    The message names the file, the byte offset of the offending header or
    block, and what was wrong; the same facts are kept as attributes.
    """

    def __init__(self, path: str, offset: int, problem: str) -> None:
        super().__init__(f"{path}: at byte offset {offset}: {problem}")
        self.path = path
        self.offset = offset
        self.problem = problem


class TruncatedCaptureWarning(UserWarning):
    """The last record of a capture was cut short and was dropped (strict=False)."""
