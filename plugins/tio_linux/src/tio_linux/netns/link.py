"""Two namespaces, A and B, joined by two TUN devices and a forwarder between them.

    namespace A                                               namespace B
    198.18.0.1/24 fd00::1/64                       198.18.0.2/24 fd00::2/64
         [TUN a] <--- your forwarder reads and writes both ---> [TUN b]

Traffic from A to 198.18.0.2 is routed into TUN a; the forwarder reads it and
writes it into TUN b, where B's stack receives it (and the replies take the
opposite way). Three ways to join A and B:

- ``open()``: the TUNs are created inside A and B (configured and up) and the
  two LinuxQueueSets are handed to forwarding code running in this process.
- ``start(argv)``: a forwarder program creates both TUNs by name; it runs in a
  third namespace, and once it has attached its queues the devices are moved
  into A and B and configured. It is stopped, and everything removed, by close().
- ``veth()``: a veth pair instead (the kernel alone; a baseline for benchmarks).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from tio_linux.netns.errors import ForwarderError, NetnsError
from tio_linux.netns.namespace import Namespace, deferred_interrupt, unique_ifname
from tio_linux.netns.traffic import TcpTransfer, UdpTransfer, check_test_address, tcp_transfer, udp_transfer

IPV4 = ("198.18.0.1", "198.18.0.2", 24)
IPV6 = ("fd00::1", "fd00::2", 64)
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
POLL_S = 0.02
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
IFA_F_NODAD = 0x02


@dataclass(frozen=True)
class Side:
    """One end: its namespace, the device name there, and its addresses."""

    ns: Namespace
    ifname: str
    ipv4: str
    ipv6: str
    prefix4: int
    prefix6: int

    def address(self, version: int = 4) -> str:
        return self.ipv4 if version == 4 else self.ipv6

    def cidrs(self) -> list[str]:
        return [f"{self.ipv4}/{self.prefix4}", f"{self.ipv6}/{self.prefix6}"]


class ForwarderProcess:
    """A forwarder program started by TunLink.start(); output goes to files (a full pipe never blocks it)."""

    def __init__(self, ns: Namespace, argv: list[str], env: dict[str, str]) -> None:
        self.argv = argv
        # files, not pipes: a forwarder that prints a lot never blocks on a full pipe
        self._out = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed by close())
        self._err = tempfile.TemporaryFile("w+")  # noqa: SIM115
        self.popen = ns.popen(argv, stdout=self._out, stderr=self._err, stdin=subprocess.DEVNULL, env=env)
        self.pid = self.popen.pid

    def output(self) -> tuple[str, str]:
        """(stdout, stderr) so far."""
        texts = []
        for handle in (self._out, self._err):
            handle.flush()
            handle.seek(0)
            texts.append(handle.read())
        return texts[0], texts[1]

    def poll(self) -> int | None:
        return self.popen.poll()

    def processes(self) -> list[int]:
        """The forwarder and every live descendant (worker processes)."""
        found, frontier = [], [self.pid]
        while frontier:
            pid = frontier.pop()
            found.append(pid)
            for task in _tasks(pid):
                with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as handle:
                    frontier += [int(child) for child in handle.read().split()]
        return found

    def cpu_seconds(self) -> float:
        """User+system CPU time of the forwarder and its live descendants (reaped children included)."""
        ticks = 0
        for pid in self.processes():
            with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as handle:
                # fields after the ")" closing the command name: utime is the 12th, then stime, cutime, cstime
                fields = handle.read().rpartition(")")[2].split()
                ticks += sum(int(value) for value in fields[11:15])
        return ticks / CLOCK_TICKS

    def tun_fds(self, ifname: str) -> int:
        """TUN queues of ``ifname`` one process of the tree holds (fdinfo's ``iff:`` line)."""
        return max((_tun_fds_of(pid, ifname) for pid in self.processes()), default=0)

    def stop(self, signum: int = signal.SIGINT, timeout: float = STOP_TIMEOUT_S) -> int:
        """Signal the forwarder, wait, SIGKILL it after ``timeout``; its exit code."""
        with deferred_interrupt():
            if self.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    self.popen.send_signal(signum)
                try:
                    self.popen.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.popen.kill()
                    self.popen.wait()
            return self.popen.returncode

    def close(self) -> None:
        self.stop()
        self._out.close()
        self._err.close()


def _tasks(pid: int) -> list[str]:
    try:
        return os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []


def _tun_fds_of(pid: int, ifname: str) -> int:
    wanted = f"iff:\t{ifname}\n"
    count = 0
    try:
        fds = os.listdir(f"/proc/{pid}/fdinfo")
    except OSError:
        return 0
    for fd in fds:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/fdinfo/{fd}") as handle:
            count += wanted in handle.read()
    return count


class TunLink:
    """Namespaces A and B (created now) to be joined by TUN devices; close() removes everything.

    Addresses must come from 198.18.0.0/15 and fd00::/8 (AddressError otherwise).
    """

    def __init__(self, *, ipv4: tuple[str, str, int] = IPV4, ipv6: tuple[str, str, int] = IPV6) -> None:
        for address in (*ipv4[:2], *ipv6[:2]):
            check_test_address(address)
        self._namespaces: list[Namespace] = []
        self._queue_sets: list[Any] = []
        self.forwarder: ForwarderProcess | None = None
        self._joined = ""
        try:  # outside the deferral: an interrupt it delivers at its end also removes the namespaces
            with deferred_interrupt():
                ns_a, ns_b = self._namespace("a"), self._namespace("b")
                self.a = Side(ns_a, unique_ifname("ta"), ipv4[0], ipv6[0], ipv4[2], ipv6[2])
                self.b = Side(ns_b, unique_ifname("tb"), ipv4[1], ipv6[1], ipv4[2], ipv6[2])
        except BaseException:
            self.close()
            raise

    def _namespace(self, tag: str) -> Namespace:
        ns = Namespace(tag)
        self._namespaces.append(ns)
        return ns

    def __enter__(self) -> TunLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        joined = self._joined or "not joined"
        return f"TunLink(a={self.a.ns.name}:{self.a.ifname}, b={self.b.ns.name}:{self.b.ifname}, {joined})"

    def _claim(self, how: str) -> None:
        if self._joined:
            raise NetnsError(f"this TunLink is already joined ({self._joined}); make another one")
        self._joined = how

    # -- joining A and B -------------------------------------------------------------

    def open(self, **options: Any) -> tuple[Any, Any]:
        """(queue set in A, queue set in B): TUNs made by tio_linux.backend.open_linux, configured and up.

        ``options`` go to open_linux for both (queues, offloads, tso, uso, mtu).
        The sets are closed by close(); forward between them in this process.
        """
        from tio_linux.backend import open_linux

        self._claim("open")
        with deferred_interrupt():
            for side in (self.a, self.b):
                self._queue_sets.append(side.ns.run(open_linux, name=side.ifname, **options))
                self._configure(side, None)  # addresses set here, not by open_linux: without DAD
        return self._queue_sets[0], self._queue_sets[1]

    def start(
        self,
        argv: list[str],
        *,
        queues: int = 1,
        ready: str | None = None,
        mtu: int | None = None,
        timeout: float = READY_TIMEOUT_S,
        env: dict[str, str] | None = None,
    ) -> ForwarderProcess:
        """Run a forwarder program that creates TUN ``{a}`` and TUN ``{b}``; returns once traffic can flow.

        ``{a}`` and ``{b}`` in argv are replaced by the device names (also in the
        environment as TUN_A and TUN_B). The program is ready when it holds
        ``queues`` queues of each device and, with ``ready``, has printed a line
        starting with that text. ForwarderError (with its output) if it exits
        first or is not ready within ``timeout`` s.
        """
        if not any("{a}" in arg for arg in argv) or not any("{b}" in arg for arg in argv):
            raise ValueError(f"argv must name the devices with '{{a}}' and '{{b}}': {argv!r}")
        self._claim("start")
        argv = [arg.replace("{a}", self.a.ifname).replace("{b}", self.b.ifname) for arg in argv]
        environment = {**os.environ, **(env or {}), "TUN_A": self.a.ifname, "TUN_B": self.b.ifname}
        with deferred_interrupt():
            middle = self._namespace("fwd")
            self.forwarder = ForwarderProcess(middle, argv, environment)
        self._wait_ready(self.forwarder, middle, queues, ready, timeout)
        with deferred_interrupt():
            for side in (self.a, self.b):
                middle.run(_move_link, side.ifname, side.ns.path)
                self._configure(side, mtu)
        return self.forwarder

    def _wait_ready(self, fwd: ForwarderProcess, middle: Namespace, queues: int, ready: str | None, timeout: float):
        deadline = time.monotonic() + timeout
        while True:
            code = fwd.poll()
            if code is not None:
                out, err = fwd.output()
                raise ForwarderError(f"forwarder {fwd.argv} exited with code {code} before it was ready\n{out}{err}")
            present = set(middle.links())
            devices = all(side.ifname in present for side in (self.a, self.b))
            attached = devices and all(fwd.tun_fds(side.ifname) >= queues for side in (self.a, self.b))
            printed = ready is None or any(line.startswith(ready) for line in fwd.output()[0].splitlines())
            if attached and printed:
                return
            if time.monotonic() > deadline:
                out, err = fwd.output()
                raise ForwarderError(
                    f"forwarder {fwd.argv} not ready after {timeout:.0f} s (devices {self.a.ifname}, "
                    f"{self.b.ifname} present: {devices}, {queues} queue(s) each attached: {attached}, "
                    f"{ready!r} printed: {printed})\n{out}{err}"
                )
            time.sleep(POLL_S)

    def veth(self, mtu: int | None = None) -> None:
        """Join A and B by a veth pair (no forwarder: the kernel's own speed)."""
        self._claim("veth")
        with deferred_interrupt():
            self.a.ns.run(_add_veth, self.a.ifname, self.b.ifname, self.b.ns.path)
            for side in (self.a, self.b):
                self._configure(side, mtu)

    @staticmethod
    def _configure(side: Side, mtu: int | None) -> None:
        side.ns.run(_configure_link, side.ifname, side.cidrs(), mtu)
        side.ns.wait_addresses(side.ifname)

    # -- traffic and counters ---------------------------------------------------------

    def tcp(self, size: int, *, version: int = 4, reverse: bool = False, timeout: float = 60.0) -> TcpTransfer:
        """``size`` bytes over one TCP connection from A to B (B to A with reverse); check ``.intact``."""
        src, dst = (self.b, self.a) if reverse else (self.a, self.b)
        return tcp_transfer(src.ns, dst.ns, dst.address(version), size, timeout=timeout)

    def udp(
        self,
        messages: list[bytes],
        *,
        version: int = 4,
        segment_size: int | None = None,
        reverse: bool = False,
        timeout: float = 5.0,
    ) -> UdpTransfer:
        """UDP messages from A to B (see traffic.udp_transfer); check ``.intact``."""
        src, dst = (self.b, self.a) if reverse else (self.a, self.b)
        return udp_transfer(src.ns, dst.ns, dst.address(version), messages, segment_size=segment_size, timeout=timeout)

    def checksum_errors(self) -> int:
        """Checksum-error counters of A and B together."""
        return self.a.ns.checksum_errors() + self.b.ns.checksum_errors()

    # -- removal -----------------------------------------------------------------------

    def close(self) -> None:
        """Stop the forwarder, close queue sets, delete the devices, remove the namespaces. Idempotent."""
        with deferred_interrupt():
            problems: list[str] = []
            if self.forwarder is not None:
                _attempt(problems, self.forwarder.close)
            for qset in self._queue_sets:
                _attempt(problems, qset.close)
            self._queue_sets.clear()
            # a device still held open elsewhere would outlive its namespace's name: delete it first
            sides = [side for side in (getattr(self, "a", None), getattr(self, "b", None)) if side is not None]
            for ns in self._namespaces:
                for side in sides:
                    if ns.exists():
                        _attempt(problems, ns.delete_link, side.ifname)
            for ns in self._namespaces:
                _attempt(problems, ns.remove)
            if problems:
                raise NetnsError("cleanup incomplete: " + "; ".join(problems))


def _attempt(problems: list[str], step, *args: Any) -> None:
    try:
        step(*args)
    except Exception as exc:
        problems.append(f"{getattr(step, '__qualname__', step)}: {type(exc).__name__}: {exc}")


def _move_link(ifname: str, target_path: str) -> None:
    from pyroute2 import IPRoute

    fd = os.open(target_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with IPRoute() as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname=ifname)[0], net_ns_fd=fd)
    finally:
        os.close(fd)


def _configure_link(ifname: str, cidrs: list[str], mtu: int | None) -> None:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        index = ipr.link_lookup(ifname=ifname)[0]
        if mtu is not None:
            ipr.link("set", index=index, mtu=mtu)
        for cidr in cidrs:
            address, prefix = cidr.split("/")
            # no duplicate address detection: nothing else is on the link, and a tentative address cannot be bound
            flags = IFA_F_NODAD if ":" in address else 0
            ipr.addr("add", index=index, address=address, prefixlen=int(prefix), flags=flags)
        ipr.link("set", index=index, state="up")


def _add_veth(ifname: str, peer: str, peer_ns_path: str) -> None:
    from pyroute2 import IPRoute

    fd = os.open(peer_ns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with IPRoute() as ipr:
            ipr.link("add", ifname=ifname, kind="veth", peer={"ifname": peer, "net_ns_fd": fd})
    finally:
        os.close(fd)
