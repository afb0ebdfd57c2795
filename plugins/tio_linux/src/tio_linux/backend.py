"""open_linux(): create a TUN device, negotiate offloads, build the queue set.

Options (all validated before any syscall):
  name       interface name, at most 15 bytes; "%d" lets the kernel number it
  queues     1..256; more than one makes an IFF_MULTI_QUEUE device
  offloads   False: plain queues (no virtio_net_hdr), no capabilities
  tso, uso   offer TCP / UDP segmentation offload
  mtu, addresses, up   optional link set-up through netlink (pyroute2)
  create     False: attach only to an existing device (e.g. a persistent TUN root made
             for this user), the way it was made; no link set-up (mtu/addresses/up refused)

Kill switches in the environment override the options (disable only):
  TIO_LINUX_DISABLE=tso,uso   or   TIO_LINUX_DISABLE=all
capabilities() always reports what the kernel granted after the switches.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import ipaddress
import os
import socket
import struct
from collections.abc import Sequence

from tio_core.contract import Queue, QueueSet
from tio_core.errors import ConfigError, QueueClosed
from tio_core.wire import VIRTIO_NET_HDR_LEN
from tio_linux import link, tun
from tio_linux.errors import DeviceError, NotATunError
from tio_linux.queue import PlainQueue, SetState, TunQueue, VnetQueue

DISABLE_ENV = "TIO_LINUX_DISABLE"
SIOCGIFMTU = 0x8921
_SWITCHES = ("tso", "uso", "all")


def disabled_by_env() -> set[str]:
    """Features the operator switched off with TIO_LINUX_DISABLE."""
    raw = os.environ.get(DISABLE_ENV, "")
    words = {w.strip().lower() for w in raw.split(",") if w.strip()}
    unknown = words - set(_SWITCHES)
    if unknown:
        raise ConfigError(
            f"{DISABLE_ENV}={raw!r}: unknown switch {sorted(unknown)[0]!r}; use a comma list of tso, uso or all"
        )
    return words


class LinuxQueueSet(QueueSet):
    """The queues of one TUN device, sharing an eventfd and the offload mask."""

    def __init__(self, name: str, state: SetState) -> None:
        self.name = name
        self._state = state
        self._queues: list[TunQueue] = []

    def queues(self) -> list[Queue]:
        return list(self._queues)

    @property
    def offload_mask(self) -> int:
        """The TUNSETOFFLOAD mask the kernel granted (0 for a plain device)."""
        return self._state.mask

    @property
    def gso_fallbacks(self) -> int:
        """GSO writes the kernel refused with EINVAL and that were segmented instead."""
        return self._state.gso_fallbacks

    def describe(self) -> dict[str, object]:
        """What `tio info` shows (typed: `tio info --json` prints it as is): device, header, offloads, MTU."""
        vnet = any(isinstance(q, VnetQueue) for q in self._queues)
        mask = self._state.mask
        return {
            "interface": self.name,
            "vnet_header_bytes": VIRTIO_NET_HDR_LEN if vnet else 0,
            "offload_mask": mask,
            "offloads": tun.describe_mask(mask).split("|") if mask else [],
            "mtu": _mtu(self.name),
            "gso_fallbacks": self._state.gso_fallbacks,
        }

    def add(self, fd: int) -> Queue:
        """Adopt an attached TUN fd (e.g. from a privileged helper); the set owns it from now on.

        On an error the fd stays the caller's.

        IFF_VNET_HDR is detected with TUNGETIFF. A vnet fd gets the set's
        offload mask replayed; the first one of an empty set adopts the
        offloads the device is using (whoever opened it negotiated them),
        narrowed to what this set allows. A plain fd gets every offload
        turned off (a persistent device keeps its last user's).
        """
        if self._closed:
            raise QueueClosed(f"queue set of {self.name} is closed")
        if not isinstance(fd, int) or isinstance(fd, bool) or fd < 0:
            raise NotATunError(f"add() needs a file descriptor (a non-negative int), got {fd!r}")
        name, flags = tun.get_iff(fd)
        if flags & tun.IFF_TAP or not flags & tun.IFF_TUN:
            raise NotATunError(f"fd {fd} is a TAP device ({name}); tio speaks IP (IFF_TUN) only")
        if not flags & tun.IFF_NO_PI:
            raise NotATunError(f"fd {fd} ({name}) was opened without IFF_NO_PI; reopen it with IFF_NO_PI")
        if self._queues and name != self.name:
            raise NotATunError(f"fd {fd} is a queue of {name}, but this set's queues belong to {self.name}")
        os.set_blocking(fd, False)
        os.set_inheritable(fd, False)
        if flags & tun.IFF_VNET_HDR:
            tun.set_vnet_hdr_size(fd)
            if self._state.mask:
                tun.replay(fd, self._state.mask)
            else:
                self._state.mask = self._adopt_offloads(fd, name)
            queue: TunQueue = VnetQueue(fd, self._state, name)
        else:
            tun.clear_offloads(fd)
            queue = PlainQueue(fd, self._state, name)
        self.name = name
        self._queues.append(queue)
        return queue

    def _adopt_offloads(self, fd: int, name: str) -> int:
        """The mask for the first vnet queue: the device's own, or a fresh negotiation if it cannot be read."""
        current = link.device_offloads(name)
        if current is None:  # the device is not visible from this network namespace
            return tun.negotiate(fd, self._state.wanted)
        allowed = current & self._state.wanted
        if allowed != current:  # a kill switch or option narrows what the device does
            tun.replay(fd, allowed)
        return allowed

    def close(self) -> None:
        if not self._closed:
            self._state.wake_all()  # first, so blocked readers and writers leave at once
        super().close()

    def _close_resources(self) -> None:
        self._state.release()


def _mtu(ifname: str) -> int | str:
    """The link MTU by SIOCGIFMTU (in this thread's network namespace)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            reply = fcntl.ioctl(sock, SIOCGIFMTU, struct.pack("16si", ifname.encode(), 0))
    except OSError as exc:
        return f"unknown ({exc.strerror})"
    return struct.unpack_from("i", reply, 16)[0]


def _check_options(name: str, queues: int, mtu: int | None, addresses: tuple) -> tuple[bytes, list]:
    raw_name = tun.check_ifname(name)
    for label, value in (("queues", queues), ("mtu", mtu)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ConfigError(f"{label} must be an integer, got {type(value).__name__} {value!r}")
    if not 1 <= queues <= tun.MAX_QUEUES:
        raise ConfigError(f"queues must be 1..{tun.MAX_QUEUES}, got {queues}")
    if mtu is not None and not 68 <= mtu <= 65535:
        raise ConfigError(f"mtu must be 68..65535, got {mtu}")
    parsed = []
    for text in addresses or ():
        try:
            parsed.append(ipaddress.ip_interface(text))
        except ValueError:
            raise ConfigError(f"address {text!r} is not an IP address with prefix, e.g. '198.18.0.1/24'") from None
    return raw_name, parsed


def open_linux(
    name: str = "tio%d",
    queues: int = 1,
    offloads: bool = True,
    tso: bool = True,
    uso: bool = True,
    mtu: int | None = None,
    addresses: tuple = (),
    up: bool = False,
    create: bool = True,
) -> LinuxQueueSet:
    """Create (or attach to) the TUN device ``name``; see the module doc for the options."""
    raw_name, parsed_addresses = _check_options(name, queues, mtu, addresses)
    wants_setup = mtu is not None or bool(parsed_addresses) or up
    if not isinstance(create, bool):
        raise ConfigError(f"create must be True or False, got {type(create).__name__} {create!r}")
    if not create:
        _check_attach_only(name, wants_setup)
    off = disabled_by_env()
    if "all" in off:
        offloads = False
    mask = tun.wanted_mask(tso and "tso" not in off, uso and "uso" not in off) if offloads else 0
    multi_queue = queues > 1 if create else _existing_queue_mode(name, queues)
    flags = tun.IFF_TUN | tun.IFF_NO_PI | (tun.IFF_MULTI_QUEUE if multi_queue else 0)

    fds: list[int] = []
    state = SetState(0, mask)
    try:
        real_name, state.mask = _open_first(raw_name, flags, mask, fds)
        if state.mask:
            flags |= tun.IFF_VNET_HDR
        qset = LinuxQueueSet(real_name, state)
        for _ in range(queues - 1):
            extra = tun.attach(real_name.encode(), flags)
            fds.append(extra.fd)
            if state.mask:
                tun.set_vnet_hdr_size(extra.fd)
                tun.replay(extra.fd, state.mask)
        kind = VnetQueue if state.mask else PlainQueue
        qset._queues = [kind(fd, state, real_name) for fd in fds]
        if wants_setup:
            link.configure(real_name, mtu, parsed_addresses, up)
    except BaseException:
        for fd in fds:
            os.close(fd)
        state.release()
        raise
    return qset


def _check_attach_only(name: str, wants_setup: bool) -> None:
    if "%" in name:
        raise ConfigError(f"create=False attaches to an existing device: give its name, not the template {name!r}")
    if wants_setup:
        raise ConfigError(
            "create=False attaches to an existing device and leaves its link set-up to whoever made it: "
            "drop mtu, addresses and up, and set them where the device is created (ip link set / ip addr add)"
        )


def _existing_queue_mode(name: str, queues: int) -> bool:
    """Whether to attach to the existing device ``name`` as multiqueue: the way it was made."""
    device = link.lookup(name)
    if device is None:
        raise DeviceError(
            errno.ENODEV,
            f"no TUN device {name!r} in this network namespace; create=False only attaches to an existing one: "
            f"have root create it (ip tuntap add mode tun dev {name} user {os.geteuid()} vnet_hdr"
            f"{' multi_queue' if queues > 1 else ''})",
        )
    if device.tap:
        raise DeviceError(errno.EINVAL, f"TUN device {name!r} is a TAP device; tio speaks IP (IFF_TUN) only")
    if queues > 1 and not device.multi_queue:
        raise DeviceError(
            errno.EINVAL,
            f"TUN device {name!r} was created without multi_queue and takes one queue, not {queues}: "
            f"use queues=1, or recreate it with `ip tuntap add ... multi_queue`",
        )
    return device.multi_queue


def _open_first(raw_name: bytes, flags: int, mask: int, fds: list[int]) -> tuple[str, int]:
    """Open queue 0 with offloads if wanted and granted, else plain; appends its fd to fds."""
    if mask:
        att = tun.attach(raw_name, flags | tun.IFF_VNET_HDR)
        fds.append(att.fd)
        tun.set_vnet_hdr_size(att.fd)
        granted = tun.negotiate(att.fd, mask)
        if granted:
            return att.name, granted
        # No offload accepted: IFF_VNET_HDR cannot be dropped from an fd, so reopen plain.
        fds.remove(att.fd)
        os.close(att.fd)
    att = tun.attach(raw_name, flags)
    fds.append(att.fd)
    tun.clear_offloads(att.fd)  # device-wide; a persistent device may keep a previous user's
    return att.name, 0


def adopt_queues(fds: Sequence[int], tso: bool = True, uso: bool = True) -> LinuxQueueSet:
    """A queue set made of TUN fds opened elsewhere (a privileged helper), each adopted with add().

    Takes ownership of every fd: on an error all of them are closed. The
    offloads are the ones the device is using (see LinuxQueueSet.add);
    tso/uso and TIO_LINUX_DISABLE can only narrow them.
    """
    fds = list(fds)
    try:
        if not fds:
            raise NotATunError("adopt_queues() needs at least one TUN fd")
        off = disabled_by_env()
        wanted = 0 if "all" in off else tun.wanted_mask(tso and "tso" not in off, uso and "uso" not in off)
        qset = LinuxQueueSet("", SetState(0, wanted))
    except BaseException:
        _close_all(fds)
        raise
    adopted = 0
    try:
        for fd in fds:
            qset.add(fd)
            adopted += 1
    except BaseException:
        qset.close()
        _close_all(fds[adopted:])
        raise
    return qset


def _close_all(fds: Sequence[int]) -> None:
    for fd in fds:
        if isinstance(fd, int) and not isinstance(fd, bool) and fd >= 0:
            with contextlib.suppress(OSError):  # closed already: nothing left to release
                os.close(fd)
