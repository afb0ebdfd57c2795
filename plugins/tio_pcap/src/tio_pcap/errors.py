"""Errors and warnings of the pcap backend."""

from __future__ import annotations

import errno

from tio_core.errors import QueueClosed, TioError


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


class CaptureWriteError(QueueClosed, OSError):
    """Recording to a capture file failed: disk full, file size limit, I/O error.

    The capture keeps the complete records written before the failure (never a
    partial one) and the output accepts nothing more, so this is a QueueClosed:
    a forwarding loop stops on it. It is an OSError carrying the errno of the
    failure, so callers that catch OSError keep working.
    """

    def __init__(self, path: str, error: OSError, records_written: int, records_lost: int, note: str = "") -> None:
        reason = error.strerror or str(error)
        name = errno.errorcode.get(error.errno, "") if error.errno is not None else ""
        message = (
            f"{path}: cannot record: {reason}{f' ({name})' if name else ''}; the capture holds the "
            f"{records_written} complete records written before, {records_lost} records were not recorded"
            f"{note}"
        )
        OSError.__init__(self, error.errno, message, path)  # sets errno, strerror and filename
        self.message = message
        self.os_error = error
        self.path = path
        self.records_written = records_written
        self.records_lost = records_lost

    def __str__(self) -> str:
        return self.message
