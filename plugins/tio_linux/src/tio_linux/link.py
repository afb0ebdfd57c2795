"""What the kernel says about a network link, and the link's set-up.

Netlink (pyroute2) describes a TUN device without opening it (owner, group,
multiqueue) and configures it; ethtool tells which offloads it is using.
Each call sees the network namespace of the calling thread, and none of the
queries needs a privilege; only configure() does.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import socket
import struct
from dataclasses import dataclass

from tio_core.errors import TioPermissionError
from tio_linux import tun
from tio_linux.errors import DeviceError

SIOCETHTOOL = 0x8946
ETHTOOL_GDRVINFO = 0x03
ETHTOOL_GSTRINGS = 0x1B
ETHTOOL_GSSET_INFO = 0x37
ETHTOOL_GFEATURES = 0x3A
ETH_SS_FEATURES = 4
ETH_GSTRING_LEN = 32
IFLA_TUN_TYPE_TAP = 2  # IFLA_TUN_TYPE holds IFF_TUN (1) or IFF_TAP (2)

# netdev feature names (stable in ethtool's string set; bit positions are not) -> TUNSETOFFLOAD bits
_FEATURE_BITS = {
    "tx-checksum-ip-generic": tun.TUN_F_CSUM,
    "tx-tcp-segmentation": tun.TUN_F_TSO4,
    "tx-tcp6-segmentation": tun.TUN_F_TSO6,
    "tx-tcp-ecn-segmentation": tun.TUN_F_TSO_ECN,
    "tx-udp-segmentation": tun.USO_MASK,
}


@dataclass(frozen=True)
class TunLink:
    """A TUN/TAP device as netlink describes it; owner and group are None when unset."""

    name: str
    index: int
    tap: bool
    multi_queue: bool
    persistent: bool
    owner: int | None
    group: int | None


def lookup(name: str) -> TunLink | None:
    """The TUN/TAP device ``name`` in this network namespace; None if there is no link of that name.

    DeviceError if the link exists but is not a TUN/TAP device.
    """
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        with IPRoute() as ipr:
            links = ipr.get_links(ifname=name)
    except NetlinkError as exc:
        if exc.code == errno.ENODEV:
            return None
        raise DeviceError(exc.code, f"looking up link {name} through netlink failed: {exc}") from None
    except OSError as exc:  # no netlink socket at all, e.g. a sandbox that allows only some address families
        raise DeviceError(exc.errno, f"looking up link {name} through netlink failed: {exc.strerror}") from None
    if not links:
        return None
    link = links[0]
    info = link.get_attr("IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info else None
    if kind != "tun":
        raise DeviceError(errno.EINVAL, f"link {name} is not a TUN device (it is {kind or 'a device without a kind'})")
    data = info.get_attr("IFLA_INFO_DATA")

    def attr(key: str) -> int | None:
        return data.get_attr(key) if data else None

    return TunLink(
        name=name,
        index=link["index"],
        tap=attr("IFLA_TUN_TYPE") == IFLA_TUN_TYPE_TAP,
        multi_queue=bool(attr("IFLA_TUN_MULTI_QUEUE")),
        persistent=bool(attr("IFLA_TUN_PERSIST")),
        owner=attr("IFLA_TUN_OWNER"),
        group=attr("IFLA_TUN_GROUP"),
    )


def explain_attach_refusal(name: str) -> str:
    """Why TUNSETIFF on ``name`` was refused with EPERM, and what to do about it."""
    uid, gid = os.geteuid(), os.getegid()
    helper = "or let a privileged helper open the device and pass its fd to QueueSet.add() (tio_linux.handoff)"
    create = f"ip tuntap add mode tun dev {name} user {uid}"
    try:
        device = lookup(name)
    except DeviceError as exc:  # the diagnosis is best effort: it must never hide the refusal itself
        return (
            f"TUNSETIFF on {name!r}: permission denied ({exc.strerror}); "
            f"the device must be created for this user ({create}), or the process needs CAP_NET_ADMIN, {helper}"
        )
    if device is None:
        return (
            f"TUNSETIFF on {name!r}: permission denied: there is no device {name!r} in this network namespace "
            f"and creating a TUN device needs CAP_NET_ADMIN; have root create it for this user "
            f"({create}) and open it with create=False, run with CAP_NET_ADMIN, {helper}"
        )
    wrong = []
    if device.owner is not None and device.owner != uid:
        wrong.append(f"it belongs to uid {device.owner}")
    if device.group is not None and device.group != gid and device.group not in os.getgroups():
        wrong.append(f"it is restricted to gid {device.group}")
    reason = " and ".join(wrong) if wrong else "the kernel or a security module (SELinux, AppArmor) refused it"
    return (
        f"TUNSETIFF on {name!r}: permission denied: the device exists but {reason}, and this process "
        f"(uid {uid}, gid {gid}) lacks CAP_NET_ADMIN; the device must be created with "
        f"`{create}{' multi_queue' if device.multi_queue else ''}` (or its group must be one of this process's), "
        f"or the process needs CAP_NET_ADMIN, {helper}"
    )


def explain_flags_refusal(name: str, flags: int) -> str:
    """Why TUNSETIFF on ``name`` with ``flags`` was refused with EINVAL."""
    try:
        device = lookup(name)
    except DeviceError as exc:  # not a TUN device at all, or it could not be inspected
        return f"TUNSETIFF on {name!r} with flags {flags:#x} refused: {exc.strerror}"
    if device is None:
        return f"TUNSETIFF on {name!r} refused: the kernel does not accept the name or the flags {flags:#x}"
    if device.tap:
        return f"TUN device {name!r} exists as a TAP device; tio speaks IP (IFF_TUN) only"
    if device.multi_queue and not flags & tun.IFF_MULTI_QUEUE:
        return (
            f"TUN device {name!r} was created with multi_queue and was opened as a single-queue device: "
            f"open it with create=False (attaches the way the device was made) or with queues > 1"
        )
    if not device.multi_queue and flags & tun.IFF_MULTI_QUEUE:
        return f"TUN device {name!r} was created without multi_queue and takes one queue: use queues=1"
    return f"TUNSETIFF on {name!r} refused: the device exists with flags that do not match {flags:#x}"


def device_offloads(name: str) -> int | None:
    """The TUNSETOFFLOAD mask the TUN device ``name`` is using, read from its netdev features.

    None if no TUN device of that name is visible in this network namespace
    (a fd handed over from another namespace, for instance).
    """
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            if _driver(sock, name) != "tun":
                return None
            names = _feature_names(sock, name)
            active = _active_features(sock, name, len(names))
    except OSError:
        return None
    mask = 0
    for bit, feature in enumerate(names):
        if active >> bit & 1:
            mask |= _FEATURE_BITS.get(feature, 0)
    return mask if mask & tun.TUN_F_CSUM else 0  # every offload needs CSUM


def _ethtool(sock: socket.socket, name: str, request: bytes, reply_size: int = 0) -> bytes:
    buf = ctypes.create_string_buffer(request, max(len(request), reply_size))
    ifreq = struct.pack("16sP", name.encode(), ctypes.addressof(buf)).ljust(40, b"\0")
    fcntl.ioctl(sock, SIOCETHTOOL, ifreq)
    return buf.raw


def _driver(sock: socket.socket, name: str) -> str:
    raw = _ethtool(sock, name, struct.pack("I", ETHTOOL_GDRVINFO), 196)  # struct ethtool_drvinfo
    return raw[4:36].split(b"\0", 1)[0].decode("ascii", "replace")


def _feature_names(sock: socket.socket, name: str) -> list[str]:
    raw = _ethtool(sock, name, struct.pack("IIQI", ETHTOOL_GSSET_INFO, 0, 1 << ETH_SS_FEATURES, 0))
    count = struct.unpack_from("I", raw, 16)[0]
    raw = _ethtool(sock, name, struct.pack("III", ETHTOOL_GSTRINGS, ETH_SS_FEATURES, count), 12 + count * 32)
    return [raw[12 + i * 32 : 12 + (i + 1) * 32].split(b"\0", 1)[0].decode("ascii", "replace") for i in range(count)]


def _active_features(sock: socket.socket, name: str, count: int) -> int:
    blocks = (count + 31) // 32
    raw = _ethtool(sock, name, struct.pack("II", ETHTOOL_GFEATURES, blocks), 8 + 16 * blocks)
    active = 0
    for block in range(blocks):
        # struct ethtool_get_features_block: available, requested, active, never_changed
        active |= struct.unpack_from("IIII", raw, 8 + 16 * block)[2] << (32 * block)
    return active


def configure(name: str, mtu: int | None, addresses: list, up: bool) -> None:
    """Set MTU, add addresses, bring the link up; each refusal names the step that was refused."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    step = f"looking up link {name}"
    try:
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=name)
            if not found:
                raise DeviceError(0, f"link {name} vanished before it could be configured")
            index = found[0]
            if mtu is not None:
                step = f"setting the MTU of {name} to {mtu}"
                ipr.link("set", index=index, mtu=mtu)
            for iface in addresses:
                step = f"adding address {iface} to {name}"
                ipr.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
            if up:
                step = f"bringing {name} up"
                ipr.link("set", index=index, state="up")
    except NetlinkError as exc:
        if exc.code == errno.EPERM:
            raise TioPermissionError(
                f"{step} through netlink: permission denied (needs CAP_NET_ADMIN); have root set the link up "
                f"where the device is created (ip link set dev {name} mtu N up; ip addr add ADDRESS dev {name}) "
                f"and open it without mtu, addresses or up (create=False)"
            ) from None
        raise DeviceError(exc.code, f"{step} through netlink failed: {exc}") from None
