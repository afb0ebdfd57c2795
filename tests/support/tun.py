"""A TUN queue whose kernel side is a network namespace: find a packet, open a TCP connection, receive a stream.

The test stands "behind" the TUN as the peer address: it writes the peer's packets with
``queue.write`` and reads the namespace's answers with ``queue.read``.
"""

from __future__ import annotations

import socket

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6

from tests.support.packets import parse

# The UDP listener behind a TUN of the udp_listener_queue fixture (tests/conftest.py): its address in the
# namespace, the peer's address behind the TUN, and the ports.
LOCAL, PEER = "198.18.0.1", "198.18.0.2"
LISTEN_PORT, PEER_PORT = 5000, 6000


def datagram_to_listener(payload: bytes) -> bytes:
    """The IPv4 UDP datagram from PEER:PEER_PORT to the listener of udp_listener_queue, carrying payload."""
    return bytes(IP(src=PEER, dst=LOCAL) / UDP(sport=PEER_PORT, dport=LISTEN_PORT) / payload)


def read_matching(queue, predicate, limit=200):
    """Read until a packet satisfies predicate (skipping IPv6 chatter); return its clone."""
    for _ in range(limit):
        for packet in queue.read():
            if predicate(packet):
                return packet.clone()
    raise AssertionError("expected packet never arrived")


def is_proto(number):
    def check(packet):
        data = packet.data
        return (data[9] if data[0] >> 4 == 4 else data[6]) == number

    return check


def tcp_handshake(queue, ns, family, local, peer, port, sport=40000):
    """Connect from behind the TUN to a listener in ns; returns (accepted socket, seq, ack)."""
    listener = ns.socket(family, socket.SOCK_STREAM)
    listener.bind((local, port))
    listener.listen(1)
    listener.settimeout(5)
    layer = IP if family == socket.AF_INET else IPv6
    isn = 1000
    queue.write(bytes(layer(src=peer, dst=local) / TCP(sport=sport, dport=port, flags="S", seq=isn, window=65535)))
    synack = parse(bytes(read_matching(queue, is_proto(6)).data))
    assert synack[TCP].flags == "SA"
    ack = synack[TCP].seq + 1
    queue.write(
        bytes(layer(src=peer, dst=local) / TCP(sport=sport, dport=port, flags="A", seq=isn + 1, ack=ack, window=65535))
    )
    conn, _ = listener.accept()
    listener.close()
    conn.settimeout(5)
    return conn, isn + 1, ack


def recv_stream(conn, size: int) -> bytes:
    """Receive from a connected stream socket until at least ``size`` bytes arrived (all of them are returned)."""
    received = b""
    while len(received) < size:
        chunk = conn.recv(65536)
        assert chunk, "connection closed early"
        received += chunk
    return received
