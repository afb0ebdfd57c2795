"""TCP and UDP traffic between two namespaces, checked for what arrived.

Only test addresses are accepted: 198.18.0.0/15 (RFC 2544 benchmarking) and
fd00::/8 (unique local), so nothing here can reach a real network.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from tio_linux.netns.errors import AddressError, TrafficError
from tio_linux.netns.namespace import Namespace

TEST_NETWORKS = (ipaddress.ip_network("198.18.0.0/15"), ipaddress.ip_network("fd00::/8"))
UDP_SEGMENT = 103  # setsockopt(SOL_UDP, ...): the kernel cuts each send into datagrams of this size (USO)
CHUNK = 1 << 20


def check_test_address(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The parsed address, or AddressError if it is outside 198.18.0.0/15 and fd00::/8."""
    try:
        parsed = ipaddress.ip_address(address.split("/")[0])
    except ValueError:
        raise AddressError(f"{address!r} is not an IP address") from None
    if not any(parsed in network for network in TEST_NETWORKS):
        raise AddressError(f"{address} is outside the test ranges 198.18.0.0/15 and fd00::/8")
    return parsed


def _family(address: str) -> int:
    return socket.AF_INET if check_test_address(address).version == 4 else socket.AF_INET6


def stream(seed: int, size: int) -> Iterator[bytes]:
    """``size`` deterministic, incompressible bytes in chunks of at most 1 MiB."""
    block = hashlib.shake_256(seed.to_bytes(8, "big")).digest(CHUNK)
    sent, shift = 0, 0
    while sent < size:
        piece = (block[shift:] + block[:shift])[: min(CHUNK, size - sent)]  # rotate so chunks differ
        yield piece
        sent += len(piece)
        shift = (shift + 7919) % CHUNK


@dataclass(frozen=True)
class TcpTransfer:
    """One TCP connection's worth of data: what was sent and what the receiver got."""

    size: int
    sent_sha256: str
    received_size: int
    received_sha256: str
    seconds: float

    @property
    def intact(self) -> bool:
        return self.received_size == self.size and self.received_sha256 == self.sent_sha256

    @property
    def gbit_per_s(self) -> float:
        return self.received_size * 8 / self.seconds / 1e9 if self.seconds else 0.0

    def __str__(self) -> str:
        verdict = "intact" if self.intact else "CORRUPTED or truncated"
        return (
            f"TCP transfer {verdict}: sent {self.size} bytes sha256 {self.sent_sha256[:16]}..., "
            f"received {self.received_size} bytes sha256 {self.received_sha256[:16]}... "
            f"in {self.seconds:.2f} s ({self.gbit_per_s:.2f} Gbit/s)"
        )


def tcp_transfer(
    sender: Namespace, receiver: Namespace, address: str, size: int, *, seed: int = 0, timeout: float = 60.0
) -> TcpTransfer:
    """Send ``size`` deterministic bytes from ``sender`` to ``address`` (in ``receiver``) over one connection.

    Raises TrafficError if no connection can be made or the receiver stalls for ``timeout`` s;
    corruption or loss shows in the result (``intact``), not as an exception.
    """
    family = _family(address)
    listener = receiver.socket(family, socket.SOCK_STREAM)
    outcome: dict[str, Any] = {}
    with listener:
        listener.bind((address, 0))
        listener.listen(1)
        listener.settimeout(timeout)
        port = listener.getsockname()[1]

        def receive() -> None:
            try:
                conn, _ = listener.accept()
                conn.settimeout(timeout)
                digest, got = hashlib.sha256(), 0
                with conn:
                    while chunk := conn.recv(CHUNK):
                        digest.update(chunk)
                        got += len(chunk)
                outcome["size"], outcome["sha256"] = got, digest.hexdigest()
            except BaseException as exc:  # reported by the caller
                outcome["error"] = exc
            finally:
                outcome["end"] = time.perf_counter()

        thread = threading.Thread(target=receive, name="tcp-receiver", daemon=True)
        thread.start()
        sent, sent_size = hashlib.sha256(), 0
        with sender.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            started = time.perf_counter()
            try:
                sock.connect((address, port))
                for piece in stream(seed, size):
                    sock.sendall(piece)
                    sent.update(piece)
                    sent_size += len(piece)
                sock.shutdown(socket.SHUT_WR)
            except OSError as exc:
                raise TrafficError(
                    f"TCP to [{address}]:{port} failed after {sent_size} of {size} bytes: {exc}"
                ) from exc
            thread.join(timeout)
    if thread.is_alive() or "error" in outcome:
        raise TrafficError(f"TCP receiver at [{address}]:{port} did not finish: {outcome.get('error', 'timed out')}")
    return TcpTransfer(size, sent.hexdigest(), outcome["size"], outcome["sha256"], outcome["end"] - started)


@dataclass(frozen=True)
class UdpTransfer:
    """Datagrams expected at the receiver (sends cut by UDP_SEGMENT included) and those that arrived."""

    expected: list[bytes]
    received: list[bytes] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return self.received == self.expected

    def __str__(self) -> str:
        if self.intact:
            return f"UDP: all {len(self.expected)} datagrams arrived intact and in order"
        pairs = zip(self.expected, self.received, strict=False)  # received may be shorter
        wrong = next((i for i, (e, r) in enumerate(pairs) if e != r), None)
        detail = f"first difference at datagram {wrong}" if wrong is not None else "the rest never arrived"
        return f"UDP: {len(self.received)} of {len(self.expected)} datagrams arrived; {detail}"


def udp_transfer(
    sender: Namespace,
    receiver: Namespace,
    address: str,
    messages: Sequence[bytes],
    *,
    segment_size: int | None = None,
    timeout: float = 5.0,
) -> UdpTransfer:
    """Send each message with one sendto and collect what ``receiver`` gets on ``address``.

    With ``segment_size`` the sending socket sets UDP_SEGMENT: a message longer
    than that leaves as one USO superpacket that the kernel (or the forwarder)
    cuts into datagrams of ``segment_size`` bytes. Each message's datagrams are
    received before the next is sent, so no receive buffer overflows.
    """
    family = _family(address)
    expected_per_message = [
        [m[i : i + segment_size] for i in range(0, len(m), segment_size)] if segment_size and m else [m]
        for m in messages
    ]
    received: list[bytes] = []
    with receiver.socket(family, socket.SOCK_DGRAM) as rx, sender.socket(family, socket.SOCK_DGRAM) as tx:
        rx.bind((address, 0))
        rx.settimeout(timeout)
        if segment_size:
            tx.setsockopt(socket.SOL_UDP, UDP_SEGMENT, segment_size)
        destination = rx.getsockname()[:2]
        for message, datagrams in zip(messages, expected_per_message, strict=True):
            tx.sendto(message, destination)
            try:
                for _ in datagrams:
                    received.append(rx.recv(65535))
            except TimeoutError:
                break
    return UdpTransfer([d for group in expected_per_message for d in group], received)
