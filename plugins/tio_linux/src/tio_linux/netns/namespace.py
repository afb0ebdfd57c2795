"""Network namespaces that are always removed, and work run inside them.

A namespace is a file under /run/netns, made the way ``ip netns add`` makes
it (so ``ip netns exec NAME ...`` works while debugging). Work inside one runs
in a short-lived thread that setns()-es into it: sockets, TUN devices and
child processes created there belong to that namespace, while the calling
process never leaves its own.

Removal is guaranteed on failure and on Ctrl-C: set-up and tear-down steps
hold SIGINT back until they are complete (``deferred_interrupt``), so an
interrupt never lands between creating something and remembering it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import itertools
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from tio_linux.netns.errors import NetnsError

NETNS_DIR = "/run/netns"
NAME_PREFIX = "tio-ns"  # namespace files: tio-ns-<pid>-<n>[-tag]
TUN_DEVICE = "/dev/net/tun"
CLONE_NEWNET = 0x40000000
MS_BIND, MS_REC, MS_SHARED = 0x1000, 0x4000, 0x100000
MNT_DETACH = 2
IFA_F_TENTATIVE = 0x40
REQUIRED_CAPABILITIES = ((21, "CAP_SYS_ADMIN"), (12, "CAP_NET_ADMIN"))  # (bit in CapEff, name)
PROCESS_GRACE_S = 5.0  # processes left in a namespace get SIGTERM, then SIGKILL after this

T = TypeVar("T")
_libc = ctypes.CDLL(None, use_errno=True)
_counter = itertools.count()


def _effective_capabilities() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def why_unavailable() -> str | None:
    """Why namespaces and TUN devices cannot be created here, or None if they can."""
    caps = _effective_capabilities()
    missing = [name for bit, name in REQUIRED_CAPABILITIES if not caps >> bit & 1]
    if missing:
        return (
            f"needs root: this process lacks {' and '.join(missing)} "
            "(to mount network namespaces under /run/netns and create TUN devices)"
        )
    if not os.path.exists(TUN_DEVICE):
        return f"needs {TUN_DEVICE} (load the tun module, or pass the device into the container)"
    return None


def unique_ifname(tag: str = "t") -> str:
    """A device name unique to this process (pid-based) that fits IFNAMSIZ (15 bytes)."""
    if not (tag.isalpha() and len(tag) <= 3):
        raise ValueError(f"device name tag {tag!r} must be 1-3 letters")
    return f"{tag}{os.getpid()}x{next(_counter) % 1000}"


def _unique_nsname(tag: str) -> str:
    return f"{NAME_PREFIX}-{os.getpid()}-{next(_counter)}" + (f"-{tag}" if tag else "")


# -- interrupts -----------------------------------------------------------------


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold SIGINT (and SIGTERM) back until the block is done, then deliver it.

    Only the main thread receives signals in Python; elsewhere this is a no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[tuple[int, Any]] = []
    previous: dict[int, Callable[[int, Any], Any]] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(signum)
        if callable(handler):  # SIG_DFL/SIG_IGN for SIGTERM: leave the default alone
            previous[signum] = handler
            signal.signal(signum, lambda num, frame: caught.append((num, frame)))
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if caught:
            number, frame = caught[0]
            previous[number](number, frame)  # e.g. default_int_handler raises KeyboardInterrupt


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt so cleanup runs as on Ctrl-C.

    Changes nothing if SIGTERM already has a handler or this is not the main thread.
    """
    main = threading.current_thread() is threading.main_thread()
    if not main or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


# -- running inside a namespace -------------------------------------------------------


def _enter(path: str) -> None:
    """setns() the calling thread into the namespace at ``path``."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise NetnsError(f"cannot enter network namespace {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


def run_at(path: str | None, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """fn(*args, **kwargs) in a new thread inside the namespace at ``path`` (None: a fresh one)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            if path is None:
                if _libc.unshare(CLONE_NEWNET) != 0:
                    raise NetnsError(f"unshare(CLONE_NEWNET) failed: {os.strerror(ctypes.get_errno())}")
            else:
                _enter(path)
            box["result"] = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"netns:{path}", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise NetnsError(f"{what}: {os.strerror(err)}")


def _share_netns_dir() -> None:
    """Make /run/netns a shared mount point, as iproute2 does, so bind mounts there propagate."""
    os.makedirs(NETNS_DIR, exist_ok=True)
    if _libc.mount(b"", NETNS_DIR.encode(), b"none", MS_SHARED | MS_REC, None) == 0:
        return
    _check(_libc.mount(NETNS_DIR.encode(), NETNS_DIR.encode(), b"none", MS_BIND | MS_REC, None), f"bind {NETNS_DIR}")
    _check(_libc.mount(b"", NETNS_DIR.encode(), b"none", MS_SHARED | MS_REC, None), f"share {NETNS_DIR}")


def _bind_own_namespace(path: str) -> None:
    """Runs in a thread that just unshared: pin its namespace at ``path``."""
    _check(_libc.mount(b"/proc/thread-self/ns/net", path.encode(), b"none", MS_BIND, None), f"bind {path}")


def _loopback_up() -> None:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")


def _write_sysctl(path: str, value: str) -> None:
    with open(path, "w") as handle:  # /proc/sys/net is the calling thread's namespace
        handle.write(value)


class Namespace:
    """A network namespace with its loopback up; removed by remove() or on leaving ``with``.

    Named (the default): a file under /run/netns, visible to ``ip netns``.
    ``anonymous=True``: held only by a file descriptor of this process
    (``path`` is /proc/PID/fd/N), so it also disappears when the process is
    killed outright; nothing is mounted. ``ipv6=False`` disables IPv6 on links
    created later, so TUN reads see no router solicitations or MLD reports.
    """

    def __init__(self, tag: str = "", *, ipv6: bool = True, anonymous: bool = False) -> None:
        self.name = _unique_nsname(tag)
        self.path = os.path.join(NETNS_DIR, self.name)
        self._fd = -1  # the namespace's holder when anonymous
        self._processes: list[subprocess.Popen] = []
        try:  # outside the deferral: an interrupt it delivers at its end also removes the namespace
            with deferred_interrupt():
                if anonymous:
                    self._fd = run_at(None, os.open, "/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
                    self.path = f"/proc/{os.getpid()}/fd/{self._fd}"
                else:
                    _share_netns_dir()
                    os.close(os.open(self.path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0))
                    run_at(None, _bind_own_namespace, self.path)
                self.run(_loopback_up)
                if not ipv6:
                    self.run(_write_sysctl, "/proc/sys/net/ipv6/conf/default/disable_ipv6", "1")
        except BaseException:
            self.remove()
            raise

    def __repr__(self) -> str:
        return f"Namespace({self.name!r})"

    def __enter__(self) -> Namespace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def exists(self) -> bool:
        return self._fd >= 0 or os.path.ismount(self.path)

    # -- work inside ---------------------------------------------------------------

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """fn(*args, **kwargs) in a thread inside this namespace; its result or exception."""
        return run_at(self.path, fn, *args, **kwargs)

    def socket(self, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM, proto: int = 0) -> socket.socket:
        """A socket that lives in this namespace (usable from any thread)."""
        return self.run(socket.socket, family, kind, proto)

    def popen(self, argv: list[str], **kwargs: Any) -> subprocess.Popen:
        """Start a process inside this namespace; remove() ends it if it is still running."""
        with deferred_interrupt():
            proc = self.run(subprocess.Popen, argv, **kwargs)
            self._processes.append(proc)
        return proc

    def command(self, argv: list[str], timeout: float = 60.0, **kwargs: Any) -> subprocess.CompletedProcess:
        """Run a command inside this namespace to completion (text output captured)."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return self.run(subprocess.run, argv, timeout=timeout, **kwargs)

    def links(self) -> list[str]:
        """Names of the network devices in this namespace."""
        return self.run(_link_names)

    def delete_link(self, ifname: str) -> bool:
        """Delete device ``ifname`` if it is here; True if it was."""
        return self.run(_delete_link, ifname)

    def wait_addresses(self, ifname: str, timeout: float = 5.0) -> None:
        """Wait until no IPv6 address of ``ifname`` is tentative (one cannot be bound until then).

        Even without duplicate address detection (TUN devices), the kernel clears
        the tentative flag asynchronously after the link comes up.
        """
        deadline = time.monotonic() + timeout
        while pending := self.run(_tentative_addresses, ifname):
            if time.monotonic() > deadline:
                raise NetnsError(f"addresses {pending} of {ifname} in {self.name} still tentative after {timeout} s")
            time.sleep(0.01)

    # -- counters --------------------------------------------------------------------

    def snmp(self) -> dict[str, dict[str, int]]:
        """This namespace's /proc/net/snmp, snmp6 and netstat as {group: {counter: value}}."""
        from tio_linux.netns.counters import read_snmp

        return self.run(read_snmp)

    def checksum_errors(self) -> int:
        """Sum of the L4 checksum-error counters (TCP, UDP, UDP-Lite, ICMP; v4 and v6)."""
        from tio_linux.netns.counters import checksum_errors

        return checksum_errors(self.snmp())

    def link_stats(self, ifname: str):
        """Byte and packet counters of device ``ifname`` (a LinkStats)."""
        from tio_linux.netns.counters import read_link_stats

        return self.run(read_link_stats, ifname)

    def queue_packets(self, ifname: str) -> list[int]:
        """Packets the kernel queued to each TX queue of ``ifname`` (what each TUN queue's reader got)."""
        from tio_linux.netns.counters import read_queue_packets

        return self.run(read_queue_packets, ifname)

    # -- removal ---------------------------------------------------------------------

    def remove(self) -> None:
        """End processes started here, then unmount and delete the namespace file (close its fd). Idempotent."""
        with deferred_interrupt():
            _end_processes(self._processes)
            self._processes.clear()
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
                return
            if os.path.ismount(self.path):
                _check(_libc.umount2(self.path.encode(), MNT_DETACH), f"umount {self.path}")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


def _end_processes(processes: list[subprocess.Popen]) -> None:
    running = [p for p in processes if p.poll() is None]
    for proc in running:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
    deadline = time.monotonic() + PROCESS_GRACE_S
    for proc in running:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _tentative_addresses(ifname: str) -> list[str]:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=ifname)
        if not found:
            raise NetnsError(f"no device {ifname!r} in this namespace")
        return [
            address.get_attr("IFA_ADDRESS")
            for address in ipr.get_addr(index=found[0], family=socket.AF_INET6)
            if (address["flags"] | (address.get_attr("IFA_FLAGS") or 0)) & IFA_F_TENTATIVE
        ]


def _link_names() -> list[str]:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        return [link.get_attr("IFLA_IFNAME") for link in ipr.get_links()]


def _delete_link(ifname: str) -> bool:
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=ifname)
        if not found:
            return False
        try:
            ipr.link("del", index=found[0])
        except NetlinkError as exc:
            if exc.code == errno.ENODEV:  # went away on its own meanwhile
                return False
            raise
        return True


def namespaces_of(pid: int) -> list[str]:
    """Toolkit namespaces under /run/netns created by process ``pid`` (to check none is left)."""
    prefix = f"{NAME_PREFIX}-{pid}-"
    try:
        return sorted(name for name in os.listdir(NETNS_DIR) if name.startswith(prefix))
    except FileNotFoundError:
        return []
