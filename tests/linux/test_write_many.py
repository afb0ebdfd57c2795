"""The Linux queues' write_many (root: a real TUN in a namespace).

write_many makes a queue a contract.BatchWriter: a run of plain packets goes
out in one C loop, each exactly as write() would send it, and every packet is
written or reported with the error write() would have raised.
"""

from __future__ import annotations

import pytest

from tests.support.tun import datagram_to_listener
from tio_core.contract import BatchWriter, WriteBatch
from tio_core.errors import MalformedPacket, QueueClosed
from tio_core.wire import MAX_IP_PACKET


def _raised_by_write(queue, data) -> Exception:
    with pytest.raises(MalformedPacket) as info:
        queue.write(data)
    return info.value


def test_write_many_delivers_every_packet_in_order(udp_listener_queue):
    queue, sock = udp_listener_queue
    assert isinstance(queue, BatchWriter), "rule: the linux queues write a batch in one call"
    payloads = [f"packet {n}".encode() * (1 + n) for n in range(40)]
    packets = [datagram_to_listener(p) for p in payloads]
    batch = queue.write_many(packets)
    assert batch == WriteBatch(40, sum(map(len, packets)), (), None)
    assert [sock.recv(4000) for _ in payloads] == payloads


def test_refused_packets_are_reported_with_the_error_write_raises_and_the_rest_go_out(udp_listener_queue):
    queue, sock = udp_listener_queue
    not_ip = bytes(40)  # version nibble 0: the TUN refuses it with EINVAL
    packets = [datagram_to_listener(b"first"), b"", not_ip, bytes(MAX_IP_PACKET + 1), datagram_to_listener(b"last")]
    batch = queue.write_many(packets)
    assert batch.written == 2 and batch.closed is None
    assert batch.bytes_written == len(packets[0]) + len(packets[4])
    assert [index for index, _ in batch.failed] == [1, 2, 3], "rule: every packet is written or reported"
    for index, error in batch.failed:
        expected = _raised_by_write(queue, packets[index])
        assert (type(error), str(error)) == (type(expected), str(expected)), "rule: the error write() raises"
    assert [sock.recv(4000), sock.recv(4000)] == [b"first", b"last"]


def test_a_closed_queue_reports_closed_with_nothing_written(udp_listener_queue):
    queue, _ = udp_listener_queue
    queue.close()
    batch = queue.write_many([datagram_to_listener(b"late")])
    assert batch.written == 0 and batch.failed == () and isinstance(batch.closed, QueueClosed)
