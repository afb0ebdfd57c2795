"""run_forward: where units run, how a run stops, and the merged summary.

Processes are exercised without root on fake queues over socketpairs (the
queue's state is a kernel socket, so a forked worker can drive it); threads
on the in-memory fake and on the pcap backend reading a FIFO whose writer
stalled. Signals and real TUNs are covered through the `tio` command in
tests/cli/test_forward_cli.py.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import threading
import time

import pytest

from tests.forward.sinks import ScriptedSink
from tests.support.coalesce import udp4
from tio_core.contract import Capabilities
from tio_core.errors import ConfigError
from tio_core.forward.runner import STOP_DEADLINE, RunOptions, run_forward
from tio_fake.backend import FakeQueueSet
from tio_pcap.backend import open_pcap

RULE = "rule: wire_packets_in == packets_written + dropped"
# A stop returns within STOP_DEADLINE; the slack is for a loaded 2-core machine, not for the runner.
BOUND = STOP_DEADLINE + 0.7


class SocketFakeSet(FakeQueueSet):
    """Fake queues over datagram socketpairs: process-safe, so the runner may fork workers for them.

    ``peers[i]`` is the far end of queue i: send() injects, recv() takes what the queue wrote.
    """

    process_safe = True

    def __init__(self, queues: int, caps: str | None = None) -> None:
        super().__init__(queues=1, capabilities=caps)
        self._queues = []
        self.peers = []
        for _ in range(queues):
            near, far = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
            far.setblocking(False)
            self.add(near.detach())
            self.peers.append(far)

    def received(self, index: int) -> list[bytes]:
        out = []
        while True:
            try:
                out.append(self.peers[index].recv(65535))
            except BlockingIOError:
                return out


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def stop_after(seconds: float) -> threading.Event:
    stop = threading.Event()
    threading.Timer(seconds, stop.set).start()
    return stop


def adds_up(stats) -> bool:
    return stats.wire_packets_in == stats.packets_written + stats.dropped


# -- processes --------------------------------------------------------------------------


def test_each_queue_and_direction_runs_in_its_own_process_and_the_summary_merges():
    a, b = SocketFakeSet(2), SocketFakeSet(2)
    try:
        stop = threading.Event()
        box = {}
        runner = threading.Thread(
            target=lambda: box.update(result=run_forward(a, b, RunOptions(both_ways=True, workers=2), stop=stop))
        )
        runner.start()
        time.sleep(0.3)
        forward = {0: [udp4(100, sport=1000 + i) for i in range(30)], 1: [udp4(100, sport=2000 + i) for i in range(7)]}
        for index, packets in forward.items():
            for packet in packets:
                a.peers[index].send(packet)
        for packet in [udp4(60, sport=9)] * 5:
            b.peers[1].send(packet)
        got_b = {0: [], 1: []}
        got_a = []

        def arrived():
            for i in (0, 1):
                got_b[i] += b.received(i)
            got_a.extend(a.received(1))
            return len(got_b[0]) == 30 and len(got_b[1]) == 7 and len(got_a) == 5

        wait_for(arrived)
        stopped = time.monotonic()
        stop.set()
        runner.join(BOUND + 2)
        assert not runner.is_alive()
        assert time.monotonic() - stopped < BOUND, "rule: a stop returns within the deadline"
    finally:
        a.close()
        b.close()
    result = box["result"]
    assert result.mode == "processes", "rule: with several units on process-safe sets, each runs in its own process"
    assert result.errors == [] and result.interrupted
    assert got_b == forward
    per_queue = {q["queue"]: q["packets_read"] for q in result.stats.as_dict()["per_queue"]}
    assert per_queue == {0: 30, 1: 7}, "rule: per-queue packet counts are reported"
    assert result.reverse.packets_written == 5 and result.reverse.per_queue[1].packets_read == 5
    assert result.stats.packets_written == 37 and adds_up(result.stats) and adds_up(result.reverse), RULE
    assert result.stats.active > 0 and result.elapsed >= result.stats.active


def test_a_worker_that_dies_is_reported_and_stops_the_run():
    a, b = SocketFakeSet(1), SocketFakeSet(1)
    try:
        box = {}
        runner = threading.Thread(
            target=lambda: box.update(result=run_forward(a, b, RunOptions(both_ways=True), stop=stop_after(30)))
        )
        runner.start()
        time.sleep(0.3)
        for packet in [udp4(80, sport=5)] * 4:
            a.peers[0].send(packet)
        wait_for(lambda: len(b.received(0)) > 0, timeout=10)
        time.sleep(PROGRESS_WAIT)
        workers = children_of(os.getpid())
        assert len(workers) == 2, workers
        killed = time.monotonic()
        os.kill(workers[0], signal.SIGKILL)
        runner.join(BOUND + 2)
        assert time.monotonic() - killed < BOUND
    finally:
        a.close()
        b.close()
    result = box["result"]
    assert len(result.errors) == 1 and "killed by SIGKILL" in result.errors[0], result.errors
    assert adds_up(result.stats) and adds_up(result.reverse), RULE


PROGRESS_WAIT = 0.4  # let the workers send a report first


def children_of(pid: int) -> list[int]:
    """Child processes of ``pid``, whichever of its threads forked them."""
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as handle:
            found += [int(p) for p in handle.read().split()]
    return sorted(found)


def test_processes_can_be_refused_and_forced():
    with pytest.raises(ConfigError, match="forked process"):
        run_forward(FakeQueueSet(), FakeQueueSet(), RunOptions(processes=True))
    with pytest.raises(ConfigError, match="needs a source with 2 queues"):
        run_forward(FakeQueueSet(), FakeQueueSet(), RunOptions(workers=2))


# -- threads ------------------------------------------------------------------------------


def test_in_memory_backends_run_in_threads_and_end_with_the_source():
    source = FakeQueueSet(queues=2, end_of_stream=True)
    source.inject(*[udp4(50, sport=i) for i in range(12)], queue=0)
    source.inject(*[udp4(50, sport=i) for i in range(3)], queue=1)
    sink = FakeQueueSet(queues=2)
    result = run_forward(source, sink, RunOptions(workers=2))
    assert result.mode == "threads" and not result.interrupted and result.errors == []
    assert {i: c.packets_written for i, c in result.stats.per_queue.items()} == {0: 12, 1: 3}
    assert [len(q.written_packets()) for q in sink.queues()] == [12, 3]


def test_limit_is_shared_by_every_worker():
    source = FakeQueueSet(queues=2, end_of_stream=True, max_batch=4)
    for index in (0, 1):
        source.inject(*[udp4(50, sport=i) for i in range(40)], queue=index)
    result = run_forward(source, FakeQueueSet(queues=2), RunOptions(workers=2, limit=25))
    assert result.stats.packets_read == 25, "rule: --limit counts the packets of all workers together"


def test_a_source_blocked_in_read_does_not_hold_up_the_stop():
    source = FakeQueueSet()  # blocking reads, nothing ever arrives
    started = time.monotonic()
    result = run_forward(source, FakeQueueSet(), RunOptions(both_ways=True), stop=stop_after(0.3))
    assert time.monotonic() - started < 0.3 + BOUND, "rule: no unbounded wait on a blocked reader"
    assert result.interrupted and result.errors == []


def test_a_sink_blocked_in_write_is_cut_off_and_its_batch_counted():
    release = threading.Event()

    class BlockingSink(ScriptedSink):
        def write(self, data):
            release.wait(30)  # a stalled sink (a full pipe, a hung device)
            return super().write(data)

    source = FakeQueueSet(end_of_stream=False)
    source.inject(*[udp4(50, sport=i) for i in range(5)])
    sink_set = FakeQueueSet()
    sink_set._queues = [BlockingSink(caps=Capabilities())]
    try:
        started = time.monotonic()
        result = run_forward(source, sink_set, RunOptions(), stop=stop_after(0.3))
        assert time.monotonic() - started < 0.3 + BOUND, "rule: no unbounded wait on a blocked writer"
    finally:
        release.set()
    assert result.stats.drops == {"stopped while the sink blocked a write": 5}
    assert adds_up(result.stats), RULE


def test_a_unit_that_fails_ends_the_run_with_an_error():
    source = FakeQueueSet()
    source.queues()[0].read = lambda: (_ for _ in ()).throw(RuntimeError("device on fire"))
    result = run_forward(source, FakeQueueSet(), RunOptions(), stop=stop_after(20))
    assert result.errors == ["forward[0]: RuntimeError: device on fire"]
    assert not result.interrupted


def _pcap_header() -> bytes:
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 101)


def _pcap_record(packet: bytes) -> bytes:
    return struct.pack("<IIII", 0, 0, len(packet), len(packet)) + packet


def test_pcap_source_on_a_stalled_fifo_stops_within_the_deadline(tmp_path):
    fifo = tmp_path / "capture.fifo"
    os.mkfifo(fifo)
    writer_fd = []

    def write_then_stall():
        fd = os.open(fifo, os.O_WRONLY)
        writer_fd.append(fd)
        records = b"".join(_pcap_record(udp4(40, sport=i)) for i in range(2 * 64))  # two full read batches
        os.write(fd, _pcap_header() + records + _pcap_record(udp4(40))[:30])  # ... and half a record

    opener = threading.Thread(target=write_then_stall)
    opener.start()
    source = open_pcap(path=str(fifo))  # reads the header: needs the writer
    opener.join(5)
    out = tmp_path / "out.pcap"
    sink = open_pcap(output=str(out))
    try:
        stop = threading.Event()
        box = {}
        runner = threading.Thread(target=lambda: box.update(result=run_forward(source, sink, RunOptions(), stop=stop)))
        runner.start()
        time.sleep(0.5)  # the writer stalls mid-capture: the reader now waits in a pipe read
        stopped = time.monotonic()
        stop.set()
        runner.join(BOUND + 2)
        assert time.monotonic() - stopped < BOUND, "rule: a reader stuck in a pipe read does not hold up the stop"
    finally:
        source.close()
        sink.close()
        os.close(writer_fd[0])
    result = box["result"]
    assert result.interrupted and result.stats.packets_written == 128 and adds_up(result.stats), RULE


RUN_IN_MAIN_THREAD = """
import json, sys
from tio_core.forward.runner import RunOptions, run_forward
from tio_fake.backend import FakeQueueSet
source = FakeQueueSet()
source.inject(*[bytes.fromhex(h) for h in sys.argv[1:]])
print("running", flush=True)
result = run_forward(source, FakeQueueSet(), RunOptions(both_ways=True))
print(json.dumps({"signal": result.stop_signal, "interrupted": result.interrupted,
                  "written": result.stats.packets_written, "mode": result.mode}), flush=True)
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_the_process_stops_the_run_and_is_named(signum):
    import json
    import subprocess
    import sys

    packets = [udp4(30, sport=i).hex() for i in range(3)]
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN_IN_MAIN_THREAD, *packets], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "running"
    time.sleep(0.5)  # the run is under way: both units block in reads of the idle fakes
    sent = time.monotonic()
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert time.monotonic() - sent < BOUND, "rule: a signal stops the run within the deadline"
    assert json.loads(out) == {"signal": signum.name, "interrupted": True, "written": 3, "mode": "threads"}
