"""Hand TUN queue fds from a privileged helper to an unprivileged process (SCM_RIGHTS).

The helper (root, or CAP_NET_ADMIN) opens the device and sends its queue
fds over an AF_UNIX socket; the receiver needs no privilege and no access
to /dev/net/tun, and adopts them with QueueSet.add() (adopt_queues()).

On the wire each message is an 8-byte header, b"TIOQ" | u16 total | u16
index of its first fd (network order), carrying up to SCM_MAX_FD (253) fds.
"""

from __future__ import annotations

import array
import os
import socket
import struct
from collections.abc import Sequence
from typing import NamedTuple

from tio_core.errors import ConfigError
from tio_linux import tun
from tio_linux.backend import LinuxQueueSet, adopt_queues
from tio_linux.errors import HandoffError, NotATunError

MAGIC = b"TIOQ"
FDS_PER_MESSAGE = 253  # SCM_MAX_FD: the kernel's limit of fds in one message
_HEADER = struct.Struct("!4sHH")
_FD = array.array("i")


class PeerCredentials(NamedTuple):
    pid: int
    uid: int
    gid: int


def peer_credentials(sock: socket.socket) -> PeerCredentials:
    """Who is at the other end of a connected AF_UNIX socket (SO_PEERCRED), e.g. to check before sending."""
    _check_unix(sock)
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("iII"))
    return PeerCredentials(*struct.unpack("iII", raw))


def send_queue_fds(sock: socket.socket, fds: Sequence[int]) -> None:
    """Send the queue fds of one TUN device; the sender keeps its copies (close them when done).

    Every fd is checked to be an attached TUN queue of one device before
    anything is sent: NotATunError otherwise.
    """
    _check_unix(sock)
    fds = list(fds)
    if not 1 <= len(fds) <= tun.MAX_QUEUES:
        raise ConfigError(f"send_queue_fds() sends 1..{tun.MAX_QUEUES} queue fds of one device, got {len(fds)}")
    names = set()
    for fd in fds:
        if not isinstance(fd, int) or isinstance(fd, bool) or fd < 0:
            raise NotATunError(f"send_queue_fds() needs file descriptors (non-negative ints), got {fd!r}")
        names.add(tun.get_iff(fd)[0])
    if len(names) > 1:
        raise NotATunError(f"send_queue_fds() sends the queues of one device, got fds of {sorted(names)}")
    for first in range(0, len(fds), FDS_PER_MESSAGE):
        chunk = fds[first : first + FDS_PER_MESSAGE]
        try:
            sent = socket.send_fds(sock, [_HEADER.pack(MAGIC, len(fds), first)], chunk)
        except OSError as exc:
            raise HandoffError(f"sending queue fds {first}..{first + len(chunk) - 1} failed: {exc}") from None
        if sent != _HEADER.size:
            raise HandoffError(f"sending queue fds: only {sent} of {_HEADER.size} header bytes went out")


def receive_queue_fds(sock: socket.socket, timeout: float | None = None) -> list[int]:
    """Receive the queue fds sent by send_queue_fds(); they are close-on-exec and the caller's to close.

    ``timeout`` (seconds) bounds the whole wait; None uses the socket's own
    timeout. On any failure every fd received so far is closed and
    HandoffError says what went wrong.
    """
    _check_unix(sock)
    received: list[int] = []
    saved = sock.gettimeout()
    try:
        if timeout is not None:
            sock.settimeout(timeout)
        total = None
        while total is None or len(received) < total:
            total = _receive_message(sock, received, total)
    except BaseException:
        for fd in received:
            os.close(fd)
        raise
    finally:
        if timeout is not None:
            sock.settimeout(saved)
    return received


def _receive_message(sock: socket.socket, received: list[int], total: int | None) -> int:
    """Receive one message into ``received``; returns the total the sender announced."""
    before = len(received)
    progress = f"{before} of {total}" if total is not None else "none"
    try:
        # recvmsg, not socket.recv_fds: that one ignores its flags, and the fds must be close-on-exec
        data, ancdata, flags, _ = sock.recvmsg(
            _HEADER.size, socket.CMSG_SPACE(FDS_PER_MESSAGE * _FD.itemsize), socket.MSG_CMSG_CLOEXEC
        )
    except TimeoutError:
        raise HandoffError(f"no queue fds arrived in time (received: {progress})") from None
    except OSError as exc:
        raise HandoffError(f"receiving queue fds failed: {exc}") from None
    fds = array.array("i")
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    received.extend(fds)  # first: closed with the rest whatever is wrong below
    if not data and not fds:
        raise HandoffError(f"the peer closed the connection (queue fds received: {progress})")
    if flags & (socket.MSG_CTRUNC | socket.MSG_TRUNC):
        raise HandoffError("a handoff message was truncated: more fds or bytes than the protocol allows")
    if len(data) != _HEADER.size or data[:4] != MAGIC:
        raise HandoffError(f"the peer did not send a tio queue handoff (got {bytes(data[:16])!r})")
    _, announced, first = _HEADER.unpack(data)
    if total is not None and announced != total:
        raise HandoffError(f"the peer announced {announced} queue fds after announcing {total}")
    if not 1 <= announced <= tun.MAX_QUEUES or first != before or not 1 <= len(fds) <= announced - first:
        raise HandoffError(
            f"malformed handoff message: {len(fds)} fds at index {first} of {announced} "
            f"(expected fds from index {before}, 1..{tun.MAX_QUEUES} in all)"
        )
    return announced


def receive_queue_set(
    sock: socket.socket, timeout: float | None = None, tso: bool = True, uso: bool = True
) -> LinuxQueueSet:
    """receive_queue_fds() then adopt_queues(): a LinuxQueueSet using the offloads the helper negotiated."""
    return adopt_queues(receive_queue_fds(sock, timeout), tso=tso, uso=uso)


def _check_unix(sock: socket.socket) -> None:
    if not isinstance(sock, socket.socket) or sock.family != socket.AF_UNIX:
        raise ConfigError(f"fd handoff needs an AF_UNIX socket, got {sock!r}")
