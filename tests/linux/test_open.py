"""Opening the linux backend: negotiation, switches, options, add(fd), errors, close."""

from __future__ import annotations

import errno
import fcntl
import os
import platform
import shutil
import struct
import subprocess
import sys
import threading
import time

import pytest
from pyroute2 import IPRoute

from tests.linux.conftest import open_fds
from tio_core.contract import Capabilities, GSOProto, queue_capabilities, supports_gso
from tio_core.errors import ConfigError, QueueClosed, TioError
from tio_core.plugin.registry import open_backend
from tio_linux import queue as queue_module
from tio_linux import tun
from tio_linux.backend import open_linux
from tio_linux.errors import DeviceError, NotATunError, TunUnavailableError
from tio_linux.queue import PlainQueue, VnetQueue

FULL = tun.TUN_F_CSUM | tun.TSO_MASK | tun.USO_MASK


def kernel_at_least(major: int, minor: int) -> bool:
    numbers = platform.release().split("-")[0].split(".")
    return (int(numbers[0]), int(numbers[1])) >= (major, minor)


@pytest.fixture
def ioctl_log(monkeypatch):
    """Record every TUN ioctl (fd, request, arg) while passing it to the kernel."""
    calls = []
    real = tun.tun_ioctl

    def logged(fd, request, arg):
        calls.append((fd, request, arg))
        return real(fd, request, arg)

    monkeypatch.setattr(tun, "tun_ioctl", logged)
    return calls


def refuse(monkeypatch, refused):
    """Make TUNSETOFFLOAD fail with EINVAL for masks where refused(mask) is true."""
    real = tun.tun_ioctl

    def ioctl(fd, request, arg):
        if request == tun.TUNSETOFFLOAD and refused(arg):
            raise OSError(errno.EINVAL, "refused by the test")
        return real(fd, request, arg)

    monkeypatch.setattr(tun, "tun_ioctl", ioctl)


@pytest.mark.skipif(not kernel_at_least(6, 2), reason="USO on TUN needs Linux >= 6.2")
def test_negotiates_tso_and_uso(open_in_ns):
    _, qset = open_in_ns()
    (queue,) = qset.queues()
    assert isinstance(queue, VnetQueue)
    assert qset.offload_mask == FULL
    assert queue_capabilities(queue) == Capabilities(tso=True, uso=True)
    assert supports_gso(queue, GSOProto.UDP)[1] and supports_gso(queue, GSOProto.TCP)[1]


def test_multiqueue_replays_the_granted_mask_on_every_queue(open_in_ns, ioctl_log):
    _, qset = open_in_ns(queues=4)
    queues = qset.queues()
    assert len(queues) == 4 and len({q.fileno() for q in queues}) == 4
    offloads = [(fd, arg) for fd, req, arg in ioctl_log if req == tun.TUNSETOFFLOAD]
    # one negotiation on queue 0, then the same mask on each of the other three
    assert [arg for _, arg in offloads] == [qset.offload_mask] * 4
    assert [fd for fd, _ in offloads] == [q.fileno() for q in queues]
    assert all(q.capabilities() == queues[0].capabilities() for q in queues)


def test_uso_refused_falls_back_to_tso(open_in_ns, monkeypatch):
    refuse(monkeypatch, lambda mask: bool(mask & tun.USO_MASK))
    _, qset = open_in_ns(queues=2)
    assert qset.offload_mask == tun.TUN_F_CSUM | tun.TSO_MASK
    assert [q.capabilities() for q in qset.queues()] == [Capabilities(tso=True, uso=False)] * 2


def test_every_offload_refused_reopens_plain(open_in_ns, monkeypatch):
    refuse(monkeypatch, lambda mask: True)
    _, qset = open_in_ns()
    (queue,) = qset.queues()
    assert isinstance(queue, PlainQueue)
    assert qset.offload_mask == 0
    assert queue_capabilities(queue) == Capabilities()
    assert supports_gso(queue, GSOProto.TCP) == (None, False)
    # the device really is plain now: no IFF_VNET_HDR on the fd
    assert not tun.get_iff(queue.fileno())[1] & tun.IFF_VNET_HDR


@pytest.mark.parametrize(
    ("options", "env", "expected"),
    [
        ({"uso": False}, "", Capabilities(tso=True, uso=False)),
        ({"tso": False}, "", Capabilities(tso=False, uso=True)),
        ({}, "uso", Capabilities(tso=True, uso=False)),
        ({}, "tso", Capabilities(tso=False, uso=True)),
        ({}, "TSO, uso", None),
        ({}, "all", None),
        ({"offloads": False}, "", None),
    ],
)
def test_kill_switches(open_in_ns, monkeypatch, options, env, expected):
    if expected and expected.uso and not kernel_at_least(6, 2):
        pytest.skip("USO on TUN needs Linux >= 6.2")
    monkeypatch.setenv("TIO_LINUX_DISABLE", env)
    _, qset = open_in_ns(**options)
    (queue,) = qset.queues()
    if expected is None:
        assert isinstance(queue, PlainQueue) and qset.offload_mask == 0
    else:
        assert queue.capabilities() == expected
        assert tun.capabilities_of(qset.offload_mask) == tuple(expected)


def test_unknown_kill_switch_is_a_config_error(monkeypatch, ioctl_log):
    monkeypatch.setenv("TIO_LINUX_DISABLE", "gso")
    with pytest.raises(ConfigError, match="TIO_LINUX_DISABLE"):
        open_linux(name="never0")
    assert ioctl_log == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": "x" * 16}, "at most 15"),
        ({"name": ""}, "empty"),
        ({"name": "a/b"}, "invalid"),
        ({"name": "a b"}, "invalid"),
        ({"name": ".."}, "invalid"),
        ({"name": "a%s"}, "%d"),
        ({"queues": 0}, "queues"),
        ({"queues": 257}, "queues"),
        ({"queues": "2"}, "integer"),
        ({"mtu": True}, "integer"),
        ({"mtu": 67}, "mtu"),
        ({"addresses": ("198.18.0.1/33",)}, "198.18.0.1/33"),
    ],
)
def test_bad_options_fail_before_any_syscall(monkeypatch, options, message):
    def no_open(*args, **kwargs):
        raise AssertionError("os.open called for invalid options")

    monkeypatch.setattr(tun.os, "open", no_open)
    with pytest.raises(ConfigError, match=message):
        open_linux(**options)


def test_registry_opens_linux_backend_with_validated_options(tio_netns):
    with pytest.raises(ConfigError):
        open_backend("linux", queues="2")
    ns = tio_netns()
    qset = ns.run(open_backend, "linux", name="viareg%d", queues=2, uso=False)
    try:
        assert len(qset.queues()) == 2 and qset.name == "viareg0"
        assert qset.queues()[1].capabilities().uso is False
    finally:
        qset.close()


def test_link_setup_through_netlink(open_in_ns):
    ns, qset = open_in_ns(mtu=9000, addresses=("198.18.0.1/24", "fd00::1/64"), up=True)

    def inspect():
        with IPRoute() as ipr:
            index = ipr.link_lookup(ifname=qset.name)[0]
            link = ipr.get_links(index)[0]
            addrs = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=index)}
            return link.get_attr("IFLA_MTU"), link["flags"] & 1, addrs

    mtu, is_up, addrs = ns.run(inspect)
    assert mtu == 9000 and is_up
    assert {("198.18.0.1", 24), ("fd00::1", 64)} <= addrs


def test_failed_link_setup_closes_everything(tio_netns):
    ns = tio_netns()
    before = open_fds()
    with pytest.raises(DeviceError, match="netlink"):
        ns.run(open_linux, name="badlink0", addresses=("198.18.0.1/24", "198.18.0.1/24"))
    assert open_fds() == before

    def links():
        with IPRoute() as ipr:
            return [link.get_attr("IFLA_IFNAME") for link in ipr.get_links()]

    assert "badlink0" not in ns.run(links)


def test_existing_single_queue_device_is_busy(open_in_ns):
    ns, qset = open_in_ns()
    before = open_fds()
    with pytest.raises(DeviceError, match="busy"):
        ns.run(open_linux, name=qset.name)
    assert open_fds() == before


def _attach_raw(name: str, flags: int) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, tun.TUNSETIFF, struct.pack("16sH22x", name.encode(), flags))
    return fd


def test_add_fd_detects_vnet_and_replays_mask(open_in_ns, ioctl_log):
    ns, qset = open_in_ns(queues=2, uso=False)
    flags = tun.IFF_TUN | tun.IFF_NO_PI | tun.IFF_MULTI_QUEUE | tun.IFF_VNET_HDR
    fd = ns.run(_attach_raw, qset.name, flags)
    del ioctl_log[:]
    queue = qset.add(fd)
    assert isinstance(queue, VnetQueue) and queue.fileno() == fd
    assert queue.capabilities() == Capabilities(tso=True, uso=False)
    assert [(f, a) for f, r, a in ioctl_log if r == tun.TUNSETOFFLOAD] == [(fd, qset.offload_mask)]
    assert not os.get_blocking(fd) and len(qset.queues()) == 3


def test_add_plain_fd_builds_plain_queue(open_in_ns):
    ns, qset = open_in_ns(queues=2, offloads=False)
    fd = ns.run(_attach_raw, qset.name, tun.IFF_TUN | tun.IFF_NO_PI | tun.IFF_MULTI_QUEUE)
    assert isinstance(qset.add(fd), PlainQueue)


def test_add_rejects_what_is_not_a_tun_and_leaves_the_fd_to_the_caller(open_in_ns):
    _, qset = open_in_ns()
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(NotATunError, match="not an attached TUN"):
            qset.add(read_end)
        os.fstat(read_end)  # still open: the caller keeps it
        with pytest.raises(NotATunError):
            qset.add(-1)
    finally:
        os.close(read_end)
        os.close(write_end)
    qset.close()
    with pytest.raises(QueueClosed):
        qset.add(0)


def test_close_wakes_blocked_readers_in_other_threads(open_in_ns, monkeypatch):
    # with the poll backstop out of the way, only the set's eventfd can wake them
    monkeypatch.setattr(queue_module, "POLL_BACKSTOP_MS", 60_000)
    _, qset = open_in_ns(queues=2, addresses=("198.18.0.1/24",), up=True)
    outcomes = []

    def reader(queue):
        try:
            while True:  # an up link may see IPv6 chatter; keep reading until closed
                queue.read()
        except QueueClosed:
            outcomes.append(time.monotonic())

    threads = [threading.Thread(target=reader, args=(q,)) for q in qset.queues()]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    assert outcomes == []  # still reading
    closed_at = time.monotonic()
    qset.close()
    for thread in threads:
        thread.join(5)
    assert not any(t.is_alive() for t in threads)
    assert len(outcomes) == 2 and all(isinstance(t, float) for t in outcomes)
    assert max(outcomes) - closed_at < 5
    qset.close()  # idempotent
    for queue in qset.queues():
        with pytest.raises(QueueClosed):
            queue.read()
        with pytest.raises(QueueClosed):
            queue.write(b"\x45" + bytes(27))
        with pytest.raises(QueueClosed):
            queue.fileno()


def test_closing_one_queue_ends_its_blocked_reader(open_in_ns):
    _, qset = open_in_ns(queues=2)
    first, second = qset.queues()
    outcome = []
    reader = threading.Thread(target=lambda: outcome.append(pytest.raises(QueueClosed, first.read)))
    reader.start()
    time.sleep(0.1)
    first.close()
    reader.join(5)
    assert not reader.is_alive() and len(outcome) == 1
    assert not qset.closed
    assert second.fileno() >= 0  # the other queue is untouched


def test_no_fd_is_leaked(tio_netns, monkeypatch):
    ns = tio_netns()
    before = open_fds()
    for options in ({"queues": 3}, {"offloads": False}, {"queues": 2, "uso": False}):
        qset = ns.run(open_linux, name="leak%d", **options)
        qset.queues()[0].fileno()
        qset.close()
    # failure after some fds were opened: the third queue's offload replay is refused
    real = tun.tun_ioctl
    count = {"n": 0}

    def fail_third(fd, request, arg):
        if request == tun.TUNSETOFFLOAD:
            count["n"] += 1
            if count["n"] == 3:
                raise OSError(errno.ENOMEM, "test")
        return real(fd, request, arg)

    monkeypatch.setattr(tun, "tun_ioctl", fail_third)
    with pytest.raises(DeviceError):
        ns.run(open_linux, name="leak%d", queues=3)
    assert open_fds() == before


def test_write_to_a_down_interface_is_a_typed_error(open_in_ns):
    from tio_linux.errors import InterfaceDownError

    _, qset = open_in_ns()  # created but not up
    from scapy.layers.inet import IP, UDP

    with pytest.raises(InterfaceDownError, match="down") as info:
        qset.queues()[0].write(bytes(IP(src="198.18.0.2", dst="198.18.0.1") / UDP(dport=9) / b"x"))
    assert isinstance(info.value, TioError) and info.value.errno == errno.EIO


UNPRIVILEGED = """
import sys
from tio_linux.backend import open_linux
try:
    open_linux(name="nopriv0")
except Exception as exc:
    print(type(exc).__module__ + "." + type(exc).__name__, isinstance(exc, PermissionError), exc, sep="|")
    sys.exit(0)
print("opened")
"""


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux) to drop CAP_NET_ADMIN")
def test_unprivileged_open_says_what_to_do():
    # root without CAP_NET_ADMIN (dropped from the bounding set before exec)
    result = subprocess.run(
        ["setpriv", "--bounding-set=-net_admin", "--inh-caps=-net_admin", sys.executable, "-c", UNPRIVILEGED],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    kind, is_permission, message = result.stdout.strip().split("|")
    assert kind == "tio_core.errors.TioPermissionError" and is_permission == "True"
    assert "needs CAP_NET_ADMIN" in message and "QueueSet.add()" in message


def test_missing_tun_device_says_what_to_do(monkeypatch):
    monkeypatch.setattr(tun, "TUN_PATH", "/nonexistent/net/tun")
    before = open_fds()
    with pytest.raises(TunUnavailableError, match="modprobe tun") as info:
        open_linux(name="notun0")
    assert isinstance(info.value, TioError) and isinstance(info.value, FileNotFoundError)
    assert open_fds() == before
