"""Pure twin of csrc/args.c: the argument steps the batch kernels' twins share, with the C versions' messages."""

from __future__ import annotations

import operator

INT_MIN, INT_MAX = -(2**31), 2**31 - 1  # a C int, the fd's type


def fd_argument(fd: int, kernel: str) -> int:
    """fd as an int that fits a C int; OverflowError "<kernel>: fd is out of range" otherwise (as tio_fd_arg)."""
    fd = operator.index(fd)
    if not INT_MIN <= fd <= INT_MAX:
        raise OverflowError(f"{kernel}: fd is out of range")
    return fd
