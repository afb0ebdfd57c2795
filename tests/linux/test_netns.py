"""tio_linux.netns, the shipped network-namespace kit: namespaces, TUN links, traffic, counters, cleanup."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from tio_core.errors import QueueClosed
from tio_linux.netns import (
    AddressError,
    ForwarderError,
    Namespace,
    TunLink,
    check_test_address,
    deferred_interrupt,
    namespaces_of,
)
from tio_linux.netns.namespace import NETNS_DIR

PROTO_TCP, PROTO_UDP = 6, 17


def netns_inode() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


def root_links() -> set[str]:
    """Devices of this process (names carry its pid) in the caller's namespace; others run tests here too."""
    return {name for name in os.listdir("/sys/class/net") if f"{os.getpid()}x" in name}


def pump(src, dst, edit=None) -> None:
    """Plain-queue forwarder: every packet read from src is written to dst (``edit`` may change or drop it)."""
    try:
        while True:
            for packet in src.read():
                data = bytes(packet.data)
                data = edit(data) if edit else data
                if data is not None:
                    dst.write(data)
    except QueueClosed:
        pass


def start_pumps(qa, qb, edit=None) -> None:
    for src, dst in ((qa, qb), (qb, qa)):
        threading.Thread(target=pump, args=(src.queues()[0], dst.queues()[0], edit), daemon=True).start()


def l4_proto(data: bytes) -> int:
    return data[9] if data[0] >> 4 == 4 else data[6]


# -- namespaces ------------------------------------------------------------------------


def test_a_namespace_is_separate_and_removed_without_a_trace():
    ns = Namespace("x")
    try:
        assert ns.exists() and ns.name in os.listdir(NETNS_DIR)
        assert ns.run(netns_inode) != netns_inode(), "work must run inside the namespace, not in ours"
        assert ns.links() == ["lo"]
        assert ns.command(["cat", "/proc/self/net/dev"]).stdout.count(":") == 1, "a process sees only lo"
        assert (
            ns.popen(
                [sys.executable, "-c", "import os; print(os.stat('/proc/self/ns/net').st_ino)"], stdout=subprocess.PIPE
            )
            .communicate(timeout=30)[0]
            .strip()
            == str(ns.run(netns_inode)).encode()
        )
    finally:
        ns.remove()
    assert not ns.exists() and ns.name not in os.listdir(NETNS_DIR)
    ns.remove()  # idempotent


def test_removing_a_namespace_ends_the_processes_left_in_it():
    ns = Namespace()
    sleeper = ns.popen(["sleep", "60"])
    ns.remove()
    assert sleeper.poll() is not None, "a process left running would keep the namespace alive"


def test_a_socket_lives_in_its_namespace():
    with Namespace() as ns:
        server = ns.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        probe = ns.command([sys.executable, "-c", f"import socket; socket.create_connection(('127.0.0.1', {port}), 5)"])
        assert probe.returncode == 0, probe.stderr
        server.close()


@pytest.mark.parametrize("address", ["198.18.0.1", "198.19.255.254", "fd00::1", "fdff::9/64"])
def test_test_addresses_are_accepted(address):
    check_test_address(address)


@pytest.mark.parametrize("address", ["10.0.0.1", "198.20.0.1", "192.168.1.1", "fe80::1", "2001:db8::1", "bogus"])
def test_addresses_outside_the_test_ranges_are_refused(address):
    with pytest.raises(AddressError, match="test ranges|not an IP"):
        check_test_address(address)
    with pytest.raises(AddressError):
        TunLink(ipv4=(address, "198.18.0.2", 24)) if ":" not in address else TunLink(ipv6=(address, "fd00::2", 64))
    assert namespaces_of(os.getpid()) == []


# -- in-process forwarding, traffic and counters ------------------------------------------


def test_in_process_forwarder_carries_tcp_and_udp_both_versions(tio_tun_link):
    qa, qb = tio_tun_link.open(offloads=False)
    start_pumps(qa, qb)
    errors = tio_tun_link.checksum_errors()
    for version in (4, 6):
        result = tio_tun_link.tcp(4 * 1024 * 1024, version=version)
        assert result.intact, result
        back = tio_tun_link.tcp(1024 * 1024, version=version, reverse=True)
        assert back.intact, back
        udp = tio_tun_link.udp([os.urandom(size) for size in (1, 200, 1400)], version=version)
        assert udp.intact, udp
    assert tio_tun_link.checksum_errors() == errors
    stats = tio_tun_link.a.ns.link_stats(tio_tun_link.a.ifname)
    assert stats.tx_bytes > 2 * 4 * 1024 * 1024 and stats.rx_bytes > 2 * 1024 * 1024


def test_a_forwarder_that_corrupts_data_with_valid_checksums_is_caught(tio_tun_link):
    """Swapping two 16-bit words keeps the TCP checksum valid: only the hash comparison can notice."""
    qa, qb = tio_tun_link.open(offloads=False)
    swapped = []

    def swap_once(data: bytes) -> bytes:
        if swapped or l4_proto(data) != PROTO_TCP:
            return data
        header = (data[0] & 0x0F) * 4 if data[0] >> 4 == 4 else 40
        start = header + (data[header + 12] >> 4) * 4
        first, second = data[start : start + 2], data[start + 2 : start + 4]
        if len(data) - start < 4 or first == second:
            return data
        swapped.append(True)
        return data[:start] + second + first + data[start + 4 :]

    start_pumps(qa, qb, swap_once)
    result = tio_tun_link.tcp(1024 * 1024)
    assert swapped and not result.intact, "a stream corrupted in flight must not pass as intact"
    assert "CORRUPTED" in str(result)


def test_a_forwarder_that_loses_datagrams_is_caught(tio_tun_link):
    qa, qb = tio_tun_link.open(offloads=False)
    seen = []

    def drop_every_third(data: bytes) -> bytes | None:
        if l4_proto(data) == PROTO_UDP:
            seen.append(data)
            if len(seen) % 3 == 0:
                return None
        return data

    start_pumps(qa, qb, drop_every_third)
    result = tio_tun_link.udp([bytes([n]) * 100 for n in range(6)], timeout=0.5)
    assert not result.intact and len(result.received) == 2
    assert str(result) == "UDP: 2 of 6 datagrams arrived; the rest never arrived"


def test_uso_sends_are_cut_into_datagrams(tio_tun_link):
    qa, qb = tio_tun_link.open(offloads=False)  # plain queues: the kernel segments before the TUN
    start_pumps(qa, qb)
    message = os.urandom(1200 * 3 + 10)
    result = tio_tun_link.udp([message], segment_size=1200, version=6)
    assert result.intact, result
    assert result.expected == [message[:1200], message[1200:2400], message[2400:3600], message[3600:]]


def test_queue_packets_count_what_each_queue_of_a_multiqueue_tun_got(tio_tun_link):
    qa, qb = tio_tun_link.open(queues=2, offloads=False)
    for index in range(2):
        threading.Thread(target=pump, args=(qa.queues()[index], qb.queues()[0]), daemon=True).start()
    threading.Thread(target=pump, args=(qb.queues()[0], qa.queues()[0]), daemon=True).start()
    for _ in range(8):  # separate flows (new source ports): the kernel spreads them over the queues
        assert tio_tun_link.udp([b"x" * 100] * 5).intact
    per_queue = tio_tun_link.a.ns.queue_packets(tio_tun_link.a.ifname)
    assert len(per_queue) == 2
    assert sum(per_queue) == tio_tun_link.a.ns.link_stats(tio_tun_link.a.ifname).tx_packets


def test_veth_join(tio_tun_link):
    tio_tun_link.veth()
    assert tio_tun_link.tcp(8 * 1024 * 1024, version=6).intact


def test_a_link_is_joined_once(tio_tun_link):
    tio_tun_link.veth()
    with pytest.raises(Exception, match="already joined"):
        tio_tun_link.open()


# -- forwarder programs ------------------------------------------------------------------


def refforward(mode: str = "plain") -> list[str]:
    return [sys.executable, "-m", "tio_linux.refforward", mode, "{a}", "{b}"]


def test_a_forwarder_program_runs_in_its_own_namespace_and_stops(tio_tun_link):
    forwarder = tio_tun_link.start(refforward(), ready="READY")
    assert tio_tun_link.a.ifname in tio_tun_link.a.ns.links() and tio_tun_link.b.ifname in tio_tun_link.b.ns.links()
    assert tio_tun_link.a.ifname not in root_links(), "devices never appear in the caller's namespace"
    assert len(forwarder.processes()) == 2  # one process per direction
    assert tio_tun_link.tcp(4 * 1024 * 1024).intact
    assert forwarder.cpu_seconds() > 0
    assert forwarder.stop() == 0
    assert "a->b" in forwarder.output()[1]


def test_argv_must_name_both_devices(tio_tun_link):
    with pytest.raises(ValueError, match=r"\{a\}"):
        tio_tun_link.start([sys.executable, "-m", "tio_linux.refforward", "plain", "x", "{b}"])


def test_a_forwarder_that_exits_early_is_reported_with_its_output(tio_tun_link):
    with pytest.raises(ForwarderError, match=r"exited with code 1 before it was ready\n.*no such mode"):
        tio_tun_link.start([sys.executable, "-c", "import sys; sys.exit('no such mode')", "{a}", "{b}"])


def test_a_forwarder_that_never_creates_its_devices_times_out(tio_tun_link):
    with pytest.raises(ForwarderError, match="not ready after 1 s"):
        tio_tun_link.start([sys.executable, "-c", "import time; time.sleep(60)", "{a}", "{b}"], timeout=1)
    pid = tio_tun_link.forwarder.pid
    tio_tun_link.close()
    assert not os.path.exists(f"/proc/{pid}"), "close() ends the forwarder"


# -- interrupts --------------------------------------------------------------------------


def test_deferred_interrupt_delivers_ctrl_c_after_the_block():
    finished = []
    with pytest.raises(KeyboardInterrupt), deferred_interrupt():
        signal.raise_signal(signal.SIGINT)
        finished.append(True)
    assert finished == [True]


def test_an_interrupt_anywhere_in_set_up_leaves_nothing():
    """Ctrl-C at many points of making and opening a link: every time, no namespace and no device remain."""
    for step in range(25):
        timer = threading.Timer(step * 0.003, os.kill, (os.getpid(), signal.SIGINT))
        try:
            timer.start()
            with TunLink() as link:
                link.open()
                timer.join()
                time.sleep(0.05)  # the interrupt lands here at the latest
        except KeyboardInterrupt:
            pass
        finally:
            timer.cancel()
            timer.join()
        assert namespaces_of(os.getpid()) == [], f"interrupt after {step * 3} ms left a namespace"
        assert root_links() == set(), f"interrupt after {step * 3} ms left a device"


FORWARDER_THAT_INTERRUPTS = """
import os, signal, sys, time
from tio_linux.refforward import open_device
fds = [open_device(sys.argv[1], "plain"), open_device(sys.argv[2], "plain")]
os.kill(os.getppid(), signal.SIGINT)  # Ctrl-C lands while TunLink.start waits for us
time.sleep(60)
"""


def test_ctrl_c_while_a_forwarder_starts_leaves_nothing():
    with pytest.raises(KeyboardInterrupt), TunLink() as link:
        link.start([sys.executable, "-c", FORWARDER_THAT_INTERRUPTS, "{a}", "{b}"])
    assert namespaces_of(os.getpid()) == []
    assert link.forwarder is not None and link.forwarder.poll() is not None
    assert root_links() == set()


def _veth_with_dad(name: str, peer: str, address: str) -> None:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        ipr.link("add", ifname=name, kind="veth", peer={"ifname": peer})
        for ifname in (name, peer):
            ipr.link("set", index=ipr.link_lookup(ifname=ifname)[0], state="up")
        # duplicate address detection runs: the address is tentative for at least a second
        ipr.addr("add", index=ipr.link_lookup(ifname=name)[0], address=address, prefixlen=64)


def test_wait_addresses_waits_for_ipv6_addresses_to_be_usable(tio_netns):
    from tio_linux.netns import NetnsError, unique_ifname

    ns = tio_netns()
    name = unique_ifname("vw")
    ns.run(_veth_with_dad, name, unique_ifname("vp"), "fd00::7")
    with pytest.raises(NetnsError, match=r"still tentative"):
        ns.wait_addresses(name, timeout=0.2)
    ns.wait_addresses(name)
    with ns.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        sock.bind(("fd00::7", 0))


def test_an_anonymous_namespace_is_held_by_a_descriptor_only():
    ns = Namespace("anon", anonymous=True)
    try:
        assert ns.exists() and ns.path.startswith(f"/proc/{os.getpid()}/fd/")
        assert namespaces_of(os.getpid()) == [], "nothing is mounted under /run/netns"
        assert ns.run(netns_inode) != netns_inode() and ns.links() == ["lo"]
        inode = ns.run(netns_inode)
        out = ns.command([sys.executable, "-c", "import os; print(os.stat('/proc/self/ns/net').st_ino)"]).stdout
        assert out.strip() == str(inode), "a process started there runs in it"
    finally:
        ns.remove()
    assert not ns.exists()
    ns.remove()  # idempotent
