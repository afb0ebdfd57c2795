"""/dev/net/tun: ioctls, device attachment and offload negotiation.

Everything here works on raw file descriptors; the queue classes build on
it. Every function that opens an fd closes it again on any failure.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import struct
from typing import NamedTuple

from tio_core.errors import ConfigError, TioPermissionError
from tio_core.wire import VIRTIO_NET_HDR_LEN
from tio_linux.errors import DeviceError, NotATunError, TunUnavailableError

TUN_PATH = "/dev/net/tun"

TUNSETIFF = 0x400454CA
TUNSETPERSIST = 0x400454CB
TUNSETOWNER = 0x400454CC
TUNSETGROUP = 0x400454CE
TUNGETIFF = 0x800454D2
TUNSETOFFLOAD = 0x400454D0
TUNSETVNETHDRSZ = 0x400454D8

IFF_TUN = 0x0001
IFF_TAP = 0x0002
IFF_MULTI_QUEUE = 0x0100
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
IFF_TUN_EXCL = 0x8000

TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04
TUN_F_TSO_ECN = 0x08
TUN_F_USO4 = 0x20
TUN_F_USO6 = 0x40

TSO_MASK = TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN
USO_MASK = TUN_F_USO4 | TUN_F_USO6

IFNAMSIZ = 16
MAX_QUEUES = 256
_IFREQ = struct.Struct("16sH22x")  # struct ifreq: name, flags, padding to 40 bytes

# The ioctl entry point, a module attribute so tests can make the kernel
# "refuse" an offload mask and exercise the fallback paths on a real fd.
tun_ioctl = fcntl.ioctl


def check_ifname(name: str) -> bytes:
    """The encoded name, or ConfigError saying why the kernel would refuse it."""
    if not isinstance(name, str):
        raise ConfigError(f"interface name must be a string, got {type(name).__name__}")
    raw = name.encode("utf-8", "surrogateescape")
    if not raw:
        raise ConfigError("interface name is empty")
    if len(raw) >= IFNAMSIZ:
        raise ConfigError(f"interface name {name!r} is {len(raw)} bytes; Linux allows at most {IFNAMSIZ - 1}")
    if name in (".", "..") or re.search(r"[/:\s\x00]", name):
        raise ConfigError(f"interface name {name!r} is invalid: no '/', ':', whitespace, NUL, '.' or '..'")
    if name.count("%") > (1 if "%d" in name else 0):
        raise ConfigError(f"interface name {name!r}: '%' is only allowed once, as the '%d' template")
    return raw


class Attached(NamedTuple):
    fd: int
    name: str
    flags: int


def _open_tun_fd() -> int:
    try:
        return os.open(TUN_PATH, os.O_RDWR | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise TunUnavailableError(
            f"{TUN_PATH} does not exist: load the tun module (modprobe tun) or, in a container, "
            f"pass the device in (e.g. --device /dev/net/tun)"
        ) from None
    except PermissionError:
        raise TioPermissionError(
            f"cannot open {TUN_PATH}: permission denied ({_access_of(TUN_PATH)}); a process without root needs "
            f"read-write access to it (most distributions make it 0666: chmod 0666 {TUN_PATH}, or a udev rule), "
            f"or let a privileged helper open the TUN device and pass its fd to QueueSet.add() (tio_linux.handoff)"
        ) from None


def _access_of(path: str) -> str:
    """Who may open ``path`` and who is asking, for a permission error."""
    try:
        st = os.stat(path)
    except OSError:
        return f"uid {os.geteuid()}"
    return f"mode {st.st_mode & 0o7777:04o}, owner uid {st.st_uid} gid {st.st_gid}; this process is uid {os.geteuid()}"


def attach(name: bytes, flags: int) -> Attached:
    """Open /dev/net/tun and TUNSETIFF it; the fd is non-blocking and close-on-exec."""
    fd = _open_tun_fd()
    try:
        out = tun_ioctl(fd, TUNSETIFF, _IFREQ.pack(name, flags))
    except OSError as exc:
        os.close(fd)
        shown = name.decode("utf-8", "replace")
        if exc.errno == errno.EPERM:
            from tio_linux.link import explain_attach_refusal  # netlink, only on this error path

            raise TioPermissionError(explain_attach_refusal(shown)) from None
        if exc.errno == errno.EBUSY:
            raise DeviceError(
                exc.errno, f"TUN device {shown!r} exists and is busy (in use by another process without multiqueue)"
            ) from None
        if exc.errno == errno.EINVAL:
            from tio_linux.link import explain_flags_refusal  # netlink, only on this error path

            raise DeviceError(exc.errno, explain_flags_refusal(shown, flags)) from None
        raise DeviceError(exc.errno, f"TUNSETIFF on {shown!r} failed: {exc.strerror}") from None
    real_name, real_flags = _IFREQ.unpack(out)
    return Attached(fd, real_name.rstrip(b"\0").decode("utf-8", "surrogateescape"), real_flags)


def create_persistent(name: str, owner: int | None = None, group: int | None = None, multi_queue: bool = False) -> str:
    """Create a persistent TUN device for an unprivileged user; needs CAP_NET_ADMIN.

    The same as `ip tuntap add mode tun dev NAME user OWNER group GROUP [multi_queue]`:
    the owner (and members of the group) may then attach to it without any
    capability, e.g. with open_linux(name=NAME, create=False). Returns the name.
    DeviceError (EEXIST) if a device of that name exists.
    """
    raw = check_ifname(name)
    if "%" in name:
        raise ConfigError(f"a persistent device needs a fixed name, got the template {name!r}")
    for label, value in (("owner", owner), ("group", group)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise ConfigError(f"{label} must be a uid/gid (a non-negative int) or None, got {value!r}")
    flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR | IFF_TUN_EXCL | (IFF_MULTI_QUEUE if multi_queue else 0)
    try:
        att = attach(raw, flags)
    except DeviceError as exc:
        if exc.errno == errno.EBUSY:  # IFF_TUN_EXCL on an existing name
            raise DeviceError(
                errno.EEXIST, f"cannot create persistent TUN {name!r}: a device of that name exists"
            ) from None
        raise
    try:
        # The owner before persistence: if a step fails, closing the fd removes the half-made device.
        for request, value, what in ((TUNSETOWNER, owner, "owner"), (TUNSETGROUP, group, "group")):
            if value is not None:
                _set(att.fd, request, value, f"setting the {what} of {name} to {value}")
        _set(att.fd, TUNSETPERSIST, 1, f"making {name} persistent")
    finally:
        os.close(att.fd)
    return att.name


def _set(fd: int, request: int, value: int, what: str) -> None:
    try:
        tun_ioctl(fd, request, value)
    except OSError as exc:
        raise DeviceError(exc.errno, f"{what} failed: {exc.strerror}") from None


def get_iff(fd: int) -> tuple[str, int]:
    """(name, IFF flags) of an attached TUN fd; NotATunError if it is none."""
    try:
        out = tun_ioctl(fd, TUNGETIFF, bytes(_IFREQ.size))
    except OSError as exc:
        raise NotATunError(f"fd {fd} is not an attached TUN device (TUNGETIFF: {exc.strerror})") from None
    name, flags = _IFREQ.unpack(out)
    return name.rstrip(b"\0").decode("utf-8", "surrogateescape"), flags


def set_vnet_hdr_size(fd: int, size: int = VIRTIO_NET_HDR_LEN) -> None:
    try:
        tun_ioctl(fd, TUNSETVNETHDRSZ, struct.pack("i", size))
    except OSError as exc:
        raise DeviceError(exc.errno, f"TUNSETVNETHDRSZ {size} refused: {exc.strerror}") from None


def wanted_mask(tso: bool, uso: bool) -> int:
    """The TUNSETOFFLOAD mask for the enabled features (0 = no offload worth a vnet header)."""
    mask = (TSO_MASK if tso else 0) | (USO_MASK if uso else 0)
    return mask | TUN_F_CSUM if mask else 0


def negotiate(fd: int, mask: int) -> int:
    """Ask for ``mask``; on refusal retry without USO. Returns the mask granted, 0 if none.

    The kernel leaves the previous setting unchanged when it refuses a mask,
    so probing is safe.
    """
    candidates = [mask]
    if mask & USO_MASK and mask & TSO_MASK:
        candidates.append(mask & ~USO_MASK)
    for candidate in candidates:
        try:
            tun_ioctl(fd, TUNSETOFFLOAD, candidate)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise DeviceError(exc.errno, f"TUNSETOFFLOAD {candidate:#x} failed: {exc.strerror}") from None
            continue
        return candidate
    return 0


def replay(fd: int, mask: int) -> None:
    """Send the set's agreed mask on an added queue (the setting is device-wide)."""
    try:
        tun_ioctl(fd, TUNSETOFFLOAD, mask)
    except OSError as exc:
        raise DeviceError(exc.errno, f"TUNSETOFFLOAD {mask:#x} refused on an added queue: {exc.strerror}") from None


def clear_offloads(fd: int) -> None:
    """Turn every offload off on a plain device.

    A persistent device keeps the offloads its previous user negotiated; a
    queue without a vnet header must not be handed superpackets it cannot tell apart.
    """
    try:
        tun_ioctl(fd, TUNSETOFFLOAD, 0)
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.ENOTTY):
            return  # a kernel without TUNSETOFFLOAD cannot have offloads on to clear
        raise DeviceError(exc.errno, f"TUNSETOFFLOAD 0 (clearing offloads) refused: {exc.strerror}") from None


def capabilities_of(mask: int) -> tuple[bool, bool]:
    """(tso, uso) granted by a mask."""
    return bool(mask & (TUN_F_TSO4 | TUN_F_TSO6)), bool(mask & USO_MASK)


_MASK_NAMES = (
    (TUN_F_CSUM, "CSUM"),
    (TUN_F_TSO4, "TSO4"),
    (TUN_F_TSO6, "TSO6"),
    (TUN_F_TSO_ECN, "TSO_ECN"),
    (TUN_F_USO4, "USO4"),
    (TUN_F_USO6, "USO6"),
)


def describe_mask(mask: int) -> str:
    """A TUNSETOFFLOAD mask as flag names, e.g. "CSUM|TSO4|TSO6"."""
    return "|".join(name for bit, name in _MASK_NAMES if mask & bit) or "none"
