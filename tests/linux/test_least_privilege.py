"""Least privilege (issue 12 item 16): the data path runs as an unprivileged uid.

(a) root makes a persistent TUN for uid 65534, which opens it with create=False;
(b) a privileged helper hands the queue fds over a Unix socket (tio_linux.handoff).

The unprivileged side runs in a child process that drops to uid/gid 65534
with no capabilities. Where /dev/net/tun is not open to everyone, the
child gets a private 0666 node of the same device in its own mount
namespace (what `chmod 0666 /dev/net/tun` gives a host), or skips.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import platform
import re
import select
import shutil
import socket
import subprocess
import sys
import textwrap
import time

import pytest
from pyroute2 import IPRoute
from scapy.layers.inet import IP, UDP

from tests.linux.conftest import open_fds
from tests.support.packets import udp_gso
from tio_core.errors import ConfigError
from tio_linux import link, tun
from tio_linux.backend import adopt_queues, open_linux
from tio_linux.errors import DeviceError, HandoffError, NotATunError
from tio_linux.handoff import (
    FDS_PER_MESSAGE,
    MAGIC,
    peer_credentials,
    receive_queue_fds,
    receive_queue_set,
    send_queue_fds,
)
from tio_linux.netns import unique_ifname
from tio_linux.queue import PlainQueue

NOBODY = 65534
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FULL = tun.TUN_F_CSUM | tun.TSO_MASK | tun.USO_MASK
TSO_ONLY = tun.TUN_F_CSUM | tun.TSO_MASK
UDP_SEGMENT = 103
LOCAL, PEER = "198.18.160.1", "198.18.160.2"  # the TUN's address in the namespace, and a host behind it
PORT_PLAIN, PORT_GSO, PORT_BACK = 4100, 4101, 4102
GSO_PAYLOAD = bytes(range(250)) * 20  # 5000 bytes: five 1000-byte segments


def kernel_at_least(major: int, minor: int) -> bool:
    numbers = platform.release().split("-")[0].split(".")
    return (int(numbers[0]), int(numbers[1])) >= (major, minor)


needs_uso = pytest.mark.skipif(not kernel_at_least(6, 2), reason="USO on TUN needs Linux >= 6.2")

# Runs as root in the child: prepares /dev/net/tun if asked, drops to 65534 and
# starts again (the interpreter then loads as that user), runs config["code"].
BOOTSTRAP = r"""
import ctypes, json, os, stat, sys

config = json.loads(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS, MS_REC, MS_PRIVATE, PR_SET_KEEPCAPS = 0x00020000, 0x4000, 1 << 18, 8


class CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def private_tun(mode):
    # /dev/net/tun with ``mode`` in this process's own mount namespace: the host's is untouched
    rdev = os.stat("/dev/net/tun").st_rdev
    steps = (
        ("unshare(CLONE_NEWNS)", lambda: libc.unshare(CLONE_NEWNS)),
        ("making / private", lambda: libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None)),
        ("mounting a tmpfs on /dev/net", lambda: libc.mount(b"tio-test", b"/dev/net", b"tmpfs", 0, b"mode=0755")),
    )
    for what, step in steps:
        if step() != 0:
            return f"{what} failed: {os.strerror(ctypes.get_errno())}"
    try:
        os.mknod("/dev/net/tun", stat.S_IFCHR | 0o600, rdev)
        os.chmod("/dev/net/tun", mode)
    except OSError as exc:
        return f"mknod /dev/net/tun failed: {exc.strerror}"
    return None


if os.geteuid() == 0:
    mode = config["tun_mode"]
    host_mode = os.stat("/dev/net/tun").st_mode & 0o777
    if mode is not None and not (mode == 0o666 and host_mode & 0o006 == 0o006):
        problem = private_tun(mode)
        if problem:
            print(f"SKIP: uid 65534 needs a /dev/net/tun of mode {mode:o} (the host's is {host_mode:o}) "
                  f"and a private one could not be made: {problem}", flush=True)
            sys.exit(77)
    # Like setpriv: keep the capabilities across setuid only so that execve can load an interpreter
    # installed where uid 65534 cannot read; execve by a non-root uid then drops every one of them.
    libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
    header, data = CapHeader(0x20080522, 0), (CapData * 2)()
    libc.capget(ctypes.byref(header), data)
    for half in data:
        half.effective, half.inheritable = half.permitted, 0
    libc.capset(ctypes.byref(header), data)
    os.execv(sys.executable, [sys.executable, "-c", config["bootstrap"], sys.argv[1]])
with open("/proc/self/status") as status:
    caps = {line.split(":")[0]: int(line.split()[1], 16) for line in status if line.startswith(("CapEff", "CapPrm"))}
assert os.geteuid() == 65534 and os.getegid() == 65534 and os.getgroups() == [] and not any(caps.values()), (
    f"the child did not drop its privileges: uid {os.geteuid()}, gid {os.getegid()}, {caps}"
)
exec(compile(config["code"], "<unprivileged child>", "exec"), {"__name__": "__child__", "values": config["values"]})
"""

# Helpers of the child's code: report lines, and the traffic it moves through a queue set.
PRELUDE = r"""
import json, os, select, time
from tio_core import kernels
from tio_core.contract import GSOProto, queue_capabilities


def report(tag, **data):
    print(tag, json.dumps(data), flush=True)


def udp_dport(data):
    if len(data) < 28 or data[0] >> 4 != 4 or data[9] != 17:
        return None
    ihl = (data[0] & 15) * 4
    return int.from_bytes(data[ihl + 2 : ihl + 4], "big")


def exercise(qset, **extra):
    queues = qset.queues()
    caps = queue_capabilities(queues[0])
    report("READY", uid=os.geteuid(), mask=qset.offload_mask, tso=caps.tso, uso=caps.uso,
           queues=len(queues), kinds=sorted({type(q).__name__ for q in queues}), **extra)
    wanted = {int(port): count for port, count in values["expect"].items()}
    seen = {port: [] for port in wanted}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(sum(s for *_, s in seen[p]) < n for p, n in wanted.items()):
        ready, _, _ = select.select(queues, [], [], 0.2)
        for queue in ready:
            for packet in queue.read_nowait():
                port = udp_dport(packet.data)
                if port in seen:
                    segments = len(kernels.segment(packet)) if packet.gso.is_superpacket else 1
                    seen[port].append((packet.gso.proto.name, packet.gso.size, segments))
    out = queues[-1]
    out.write(bytes.fromhex(values["plain_out"]))
    ip_hdr, udp_hdr, payloads = values["gso_out"]
    out.write_gso(bytes.fromhex(ip_hdr), bytes.fromhex(udp_hdr), [bytes.fromhex(p) for p in payloads], GSOProto.UDP)
    report("RESULT", seen={str(p): s for p, s in seen.items()})
    qset.close()
"""

OPEN_PERSISTENT = r"""
from tio_linux.backend import open_linux

exercise(open_linux(name=values["name"], queues=2, create=False))
"""

RECEIVE_FROM_HELPER = r"""
import socket
from tio_linux.handoff import peer_credentials, receive_queue_set

sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.settimeout(20)
sock.connect(values["address"])
helper = peer_credentials(sock)
qset = receive_queue_set(sock, timeout=20)
sock.close()
exercise(qset, helper_uid=helper.uid, tun_access=os.access("/dev/net/tun", os.R_OK | os.W_OK))
"""

# Each case: open_linux options; the outcome is reported per case.
REFUSALS = r"""
from tio_linux.backend import open_linux


def fds():
    return len(os.listdir("/proc/self/fd"))


outcomes = {}
for label, options in values["cases"].items():
    before = fds()
    try:
        open_linux(**options).close()
        outcomes[label] = {"opened": True}
    except Exception as exc:
        outcomes[label] = {
            "type": type(exc).__module__ + "." + type(exc).__name__,
            "permission": isinstance(exc, PermissionError),
            "errno": getattr(exc, "errno", None),
            "message": str(exc),
            "leaked_fds": fds() - before,
        }
report("RESULT", outcomes=outcomes)
"""


# Each run: argv of the tio CLI, in this process (stdout is the report channel).
CLI_RUNS = r"""
import contextlib, io
from tio_core.cli import main

outcomes = {}
for label, argv in values["runs"].items():
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    outcomes[label] = {"code": code, "out": out.getvalue(), "err": err.getvalue()}
report("RESULT", outcomes=outcomes)
"""


class Child:
    """A child process in namespace ``ns`` that drops to uid/gid 65534 and runs ``code``."""

    def __init__(self, ns: str, code: str, tun_mode: int | None = None, pass_fds=(), **values) -> None:
        config = {"tun_mode": tun_mode, "code": textwrap.dedent(code), "values": values, "bootstrap": BOOTSTRAP}
        self.proc = ns.run(
            subprocess.Popen,
            [sys.executable, "-c", BOOTSTRAP, json.dumps(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=pass_fds,
            cwd=REPO,
        )
        self._pending = b""

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc_info) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()
        self.proc.stderr.close()

    def report(self, tag: str, timeout: float = 30) -> dict:
        """The data of the child's next report line, which must carry ``tag``."""
        line = self._line(timeout)
        if line.startswith("SKIP: "):
            pytest.skip(line[6:])
        assert line.startswith(tag + " "), f"expected {tag} from the child, got {line!r}{self._stderr()}"
        return json.loads(line[len(tag) + 1 :])

    def _line(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._pending:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise AssertionError(f"the child said nothing for {timeout} s{self._stderr()}")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"the child ended (exit {self.proc.wait(10)}){self._stderr()}")
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        return line.decode()

    def _stderr(self) -> str:
        if self.proc.poll() is None:
            return ""
        return "\nchild stderr:\n" + self.proc.stderr.read().decode(errors="replace")


@pytest.fixture
def persistent_tun(tio_netns):
    """persistent_tun(ns, **options) -> name of a persistent TUN made by root; deleted at teardown."""
    made: list[tuple[str, str]] = []

    def make(ns: str, owner: int | None = NOBODY, group: int | None = None, multi_queue=True, made_by="ioctl"):
        name = unique_ifname("lp")
        if made_by == "ip":
            command = ["ip", "tuntap", "add", "mode", "tun", "dev", name, "user", str(owner), "vnet_hdr"]
            ns.run(subprocess.run, command + (["multi_queue"] if multi_queue else []), check=True)
        else:
            ns.run(tun.create_persistent, name, owner=owner, group=group, multi_queue=multi_queue)
        made.append((ns, name))
        return name

    yield make
    for ns, name in made:
        ns.run(_delete_link, name)


def _delete_link(name: str) -> None:
    with IPRoute() as ipr:
        for index in ipr.link_lookup(ifname=name):
            ipr.link("del", index=index)


def _link_names() -> list[str]:
    with IPRoute() as ipr:
        return [entry.get_attr("IFLA_IFNAME") for entry in ipr.get_links()]


def _address_root_side(ns: str, name: str) -> None:
    """Root's part of the set-up: the address and the link state, before the user attaches."""
    ns.run(link.configure, name, None, [ipaddress.ip_interface(f"{LOCAL}/24")], True)


def traffic_values() -> dict:
    """What the child expects to read and writes back (built here: the child has no scapy)."""
    plain = bytes(IP(src=PEER, dst=LOCAL) / UDP(sport=5555, dport=PORT_BACK) / b"back through tio")
    payloads = [b"A" * 700, b"B" * 700, b"C" * 700, b"D" * 300]
    ip_hdr, udp_hdr = udp_gso(PEER, LOCAL, 5556, PORT_BACK, payloads)
    return {
        "expect": {str(PORT_PLAIN): 1, str(PORT_GSO): 5},
        "plain_out": plain.hex(),
        "gso_out": [ip_hdr.hex(), udp_hdr.hex(), [p.hex() for p in payloads]],
    }


def drive_traffic(ns: str, child: Child) -> tuple[dict, list[bytes]]:
    """Send a datagram and a UDP_SEGMENT superpacket into the TUN; collect what the child writes back."""
    back = ns.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = ns.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with back, sender:
        back.bind((LOCAL, PORT_BACK))
        back.settimeout(20)
        sender.sendto(b"plain datagram", (PEER, PORT_PLAIN))
        sender.setsockopt(socket.SOL_UDP, UDP_SEGMENT, 1000)
        sender.sendto(GSO_PAYLOAD, (PEER, PORT_GSO))
        result = child.report("RESULT")
        received = [back.recv(65535) for _ in range(5)]
    return result, received


def check_traffic(result: dict, received: list[bytes], superpackets: bool, how: str) -> None:
    seen = result["seen"]
    assert seen[str(PORT_PLAIN)] == [["NONE", 0, 1]], f"{how}: the unprivileged process reads a plain datagram"
    if superpackets:
        assert seen[str(PORT_GSO)] == [["UDP", 1000, 5]], (
            f"{how}: the unprivileged process is handed the 5-segment USO superpacket whole (offloads are live)"
        )
    else:
        assert seen[str(PORT_GSO)] == [["NONE", 0, 1]] * 5, f"{how}: without USO the kernel segments before the TUN"
    assert received == [b"back through tio", b"A" * 700, b"B" * 700, b"C" * 700, b"D" * 300], (
        f"{how}: write() and write_gso() from the unprivileged process reach a socket in the namespace"
    )


# (a) a persistent TUN made for the user


@needs_uso
@pytest.mark.parametrize("made_by", ["ioctl", "ip"])
def test_uid_65534_opens_its_persistent_tun_with_tso_and_uso(tio_netns, persistent_tun, made_by):
    if made_by == "ip" and shutil.which("ip") is None:
        pytest.skip("needs iproute2's ip to create the device with `ip tuntap add`")
    ns = tio_netns()
    name = persistent_tun(ns, owner=NOBODY, multi_queue=True, made_by=made_by)
    _address_root_side(ns, name)
    with Child(ns, PRELUDE + OPEN_PERSISTENT, tun_mode=0o666, name=name, **traffic_values()) as child:
        ready = child.report("READY")
        result, received = drive_traffic(ns, child)
    assert ready["uid"] == NOBODY
    assert (ready["mask"], ready["tso"], ready["uso"]) == (FULL, True, True), (
        "least privilege (a): uid 65534 negotiates TSO and USO on the persistent TUN root made for it"
    )
    assert ready["queues"] == 2 and ready["kinds"] == ["VnetQueue"]
    check_traffic(result, received, superpackets=True, how="least privilege (a)")
    assert name in ns.run(_link_names), "the persistent device outlives the unprivileged process"


def test_unprivileged_refusals_say_what_was_refused_and_what_to_do(tio_netns, persistent_tun):
    ns = tio_netns()
    mine = persistent_tun(ns, owner=NOBODY, multi_queue=False)
    theirs = persistent_tun(ns, owner=1000)
    groups = persistent_tun(ns, owner=None, group=1000)
    missing = unique_ifname("lpm")
    cases = {
        "owned by another uid": {"name": theirs, "queues": 2, "create": False},
        "restricted to another group": {"name": groups, "queues": 2, "create": False},
        "no device, creating it": {"name": missing},
        "no device, create=False": {"name": missing, "create": False},
        "up on its own device": {"name": mine, "up": True},
        "mtu on its own device": {"name": mine, "mtu": 9000},
        "address on its own device": {"name": mine, "addresses": ["198.18.160.9/24"]},
    }
    with Child(ns, PRELUDE + REFUSALS, tun_mode=0o666, cases=cases) as child:
        outcomes = child.report("RESULT")["outcomes"]
    assert all(o.get("leaked_fds") == 0 for o in outcomes.values()), f"every refusal closes its fds: {outcomes}"

    permission = "tio_core.errors.TioPermissionError"
    owned = outcomes["owned by another uid"]
    assert owned["type"] == permission and owned["permission"], owned
    assert owned["message"].startswith(f"TUNSETIFF on {theirs!r}: permission denied"), owned["message"]
    for part in (
        "belongs to uid 1000",
        "uid 65534",
        f"ip tuntap add mode tun dev {theirs} user 65534",
        "CAP_NET_ADMIN",
    ):
        assert part in owned["message"], f"the refusal of a device owned by another uid names {part!r}"

    grouped = outcomes["restricted to another group"]
    assert grouped["type"] == permission and "restricted to gid 1000" in grouped["message"], grouped

    creating = outcomes["no device, creating it"]
    assert creating["type"] == permission, creating
    for part in (f"no device {missing!r}", "needs CAP_NET_ADMIN", "create=False", "QueueSet.add()"):
        assert part in creating["message"], f"creating a device without CAP_NET_ADMIN: the error names {part!r}"

    absent = outcomes["no device, create=False"]
    assert absent["type"] == "tio_linux.errors.DeviceError" and absent["errno"] == errno.ENODEV, absent
    assert f"ip tuntap add mode tun dev {missing} user 65534" in absent["message"], absent["message"]

    for label, step in (
        ("up on its own device", f"bringing {mine} up"),
        ("mtu on its own device", f"setting the MTU of {mine} to 9000"),
        ("address on its own device", f"adding address 198.18.160.9/24 to {mine}"),
    ):
        outcome = outcomes[label]
        assert outcome["type"] == permission, outcome
        assert outcome["message"].startswith(f"{step} through netlink: permission denied"), (
            f"a refused link set-up step is named: {outcome['message']}"
        )
        assert "create=False" in outcome["message"] and "CAP_NET_ADMIN" in outcome["message"]
    assert mine in ns.run(_link_names), "a refused set-up leaves the persistent device in place"


def test_cli_opens_a_persistent_tun_as_uid_65534(tio_netns, persistent_tun):
    ns = tio_netns()
    name = persistent_tun(ns, owner=NOBODY, multi_queue=True)
    runs = {
        "info": ["info", f"linux:name={name},queues=2,create=false"],
        "up without the right": ["info", f"linux:name={name},queues=2,up=true"],
        "up with create=false": ["info", f"linux:name={name},create=false,up=true"],
    }
    with Child(ns, PRELUDE + CLI_RUNS, tun_mode=0o666, runs=runs) as child:
        outcomes = child.report("RESULT")["outcomes"]
    info = outcomes["info"]
    assert info["code"] == 0 and re.search(rf"^interface +{name}$", info["out"], re.M), info
    if kernel_at_least(6, 2):
        offloads = r"^offloads +CSUM, TSO4, TSO6, TSO_ECN, USO4, USO6$"
        assert re.search(offloads, info["out"], re.M), "tio info as uid 65534 shows TSO and USO"
    refused = outcomes["up without the right"]
    assert refused["code"] == 1 and refused["err"].count("\n") == 1, refused
    assert refused["err"].startswith(f"tio: bringing {name} up through netlink: permission denied"), refused["err"]
    usage = outcomes["up with create=false"]
    assert usage["code"] == 2 and "create=False" in usage["err"], usage


def test_inaccessible_dev_net_tun_names_its_mode_and_the_ways_out(tio_netns):
    ns = tio_netns()
    cases = {"open": {"name": unique_ifname("lpx")}}
    with Child(ns, PRELUDE + REFUSALS, tun_mode=0o600, cases=cases) as child:
        outcome = child.report("RESULT")["outcomes"]["open"]
    assert outcome["type"] == "tio_core.errors.TioPermissionError" and outcome["leaked_fds"] == 0, outcome
    for part in ("cannot open /dev/net/tun: permission denied", "mode 0600", "uid 65534", "chmod 0666", "handoff"):
        assert part in outcome["message"], f"a /dev/net/tun the user cannot open: the error names {part!r}"


def test_create_false_never_creates_a_device_even_as_root(tio_netns):
    ns = tio_netns()
    name = unique_ifname("lpn")
    with pytest.raises(DeviceError, match="ip tuntap add") as info:
        ns.run(open_linux, name=name, create=False)
    assert info.value.errno == errno.ENODEV
    assert name not in ns.run(_link_names), "create=False attaches only; it never creates a device"


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"up": True}, "leaves its link set-up"),
        ({"mtu": 1400}, "drop mtu, addresses and up"),
        ({"addresses": ["198.18.160.1/24"]}, "drop mtu, addresses and up"),
        ({"name": "lp%d"}, "not the template"),
        ({"create": "no"}, "create must be True or False"),
    ],
)
def test_create_false_refuses_link_setup_before_any_syscall(options, words):
    options = {"name": "lpnone0", "create": False, **options}
    before = open_fds()
    with pytest.raises(ConfigError, match=words):
        open_linux(**options)  # in the root namespace: nothing may be created or configured there
    assert open_fds() == before
    assert "lpnone0" not in _link_names()


def test_create_false_attaches_the_way_the_device_was_made(tio_netns, persistent_tun):
    ns = tio_netns()
    multi = persistent_tun(ns, multi_queue=True)
    single = persistent_tun(ns, multi_queue=False)
    qset = ns.run(open_linux, name=multi, queues=1, create=False)
    with qset:
        assert tun.get_iff(qset.queues()[0].fileno())[1] & tun.IFF_MULTI_QUEUE, (
            "create=False opens one queue of a multi_queue device as a multiqueue attach"
        )
    with pytest.raises(DeviceError, match="without multi_queue and takes one queue, not 2"):
        ns.run(open_linux, name=single, queues=2, create=False)
    with pytest.raises(DeviceError, match="was created with multi_queue.*create=False"):
        ns.run(open_linux, name=multi, queues=1)  # create=True: flags as asked, and the error says why


def _make_veth(name: str) -> None:
    with IPRoute() as ipr:
        ipr.link("add", ifname=name, kind="veth", peer=name + "p")


def _make_persistent_tap(name: str) -> None:
    fd = tun.attach(name.encode(), tun.IFF_TAP | tun.IFF_NO_PI).fd
    try:
        tun.tun_ioctl(fd, tun.TUNSETPERSIST, 1)
    finally:
        os.close(fd)


def test_a_name_that_is_not_a_tun_is_named_as_such(tio_netns):
    ns = tio_netns()
    veth, tap = unique_ifname("lpv"), unique_ifname("lpt")
    ns.run(_make_veth, veth)
    ns.run(_make_persistent_tap, tap)
    try:
        for create in (True, False):
            with pytest.raises(DeviceError, match=f"link {veth} is not a TUN device \\(it is veth\\)"):
                ns.run(open_linux, name=veth, create=create)
            with pytest.raises(DeviceError, match="TAP device; tio speaks IP"):
                ns.run(open_linux, name=tap, create=create)
    finally:
        ns.run(_delete_link, tap)


def test_plain_open_clears_offloads_a_persistent_device_kept(tio_netns, persistent_tun):
    ns = tio_netns()
    name = persistent_tun(ns, owner=None)
    _address_root_side(ns, name)
    with ns.run(open_linux, name=name, queues=2) as first:
        assert first.offload_mask
    assert ns.run(link.device_offloads, name), "the device kept the offloads of its last user"
    with ns.run(open_linux, name=name, queues=2, offloads=False) as plain:
        assert ns.run(link.device_offloads, name) == 0, (
            "a plain open turns off the offloads a persistent device kept from its previous user"
        )
        sender = ns.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with sender:
            sender.setsockopt(socket.SOL_UDP, UDP_SEGMENT, 1000)
            sender.sendto(GSO_PAYLOAD, (PEER, PORT_GSO))
        sizes = _udp_sizes(plain.queues(), PORT_GSO, 5)
    assert sizes == [1028] * 5, f"a plain queue is never handed a superpacket it cannot recognise: {sizes}"


def _udp_sizes(queues, port: int, count: int) -> list[int]:
    sizes: list[int] = []
    deadline = time.monotonic() + 10
    while len(sizes) < count and time.monotonic() < deadline:
        for queue in select.select(queues, [], [], 0.2)[0]:
            for packet in queue.read_nowait():
                data = packet.data
                if data[0] >> 4 == 4 and data[9] == 17 and int.from_bytes(data[22:24], "big") == port:
                    sizes.append(len(data))
    return sizes


def test_create_persistent_refuses_an_existing_name(tio_netns, persistent_tun):
    ns = tio_netns()
    name = persistent_tun(ns)
    with pytest.raises(DeviceError, match="exists") as info:
        ns.run(tun.create_persistent, name, owner=NOBODY)
    assert info.value.errno == errno.EEXIST
    with pytest.raises(ConfigError, match="uid/gid"):
        tun.create_persistent("lpbad0", owner=-1)


# (b) a privileged helper hands the fds over


@needs_uso
@pytest.mark.parametrize("helper_uso", [True, False], ids=["helper-tso-uso", "helper-tso-only"])
def test_helper_hands_queues_to_uid_65534_which_moves_packets(tio_netns, open_in_ns, helper_uso):
    ns, helper_set = open_in_ns(queues=2, uso=helper_uso, addresses=(f"{LOCAL}/24",), up=True)
    name, negotiated = helper_set.name, helper_set.offload_mask
    listener = ns.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    address = f"\0tio-handoff-{unique_ifname('h')}"  # abstract: reachable by uid 65534 without a file
    with listener:
        listener.bind(address)
        listener.listen(1)
        listener.settimeout(20)
        with Child(ns, PRELUDE + RECEIVE_FROM_HELPER, address=address, **traffic_values()) as child:
            conn, _ = listener.accept()
            with conn:
                assert peer_credentials(conn).uid == NOBODY, "the helper can check who asks before sending"
                send_queue_fds(conn, [queue.fileno() for queue in helper_set.queues()])
            helper_set.close()  # the helper keeps no copy: the child alone holds the device
            ready = child.report("READY")
            device_mask = ns.run(link.device_offloads, name)
            result, received = drive_traffic(ns, child)
    assert ready["uid"] == NOBODY and ready["helper_uid"] == 0
    assert ready["mask"] == negotiated == (FULL if helper_uso else TSO_ONLY), (
        "least privilege (b): the adopted set detects the offloads the helper negotiated"
    )
    assert (ready["tso"], ready["uso"]) == (True, helper_uso)
    assert device_mask == negotiated, "adopting the fds leaves the device's offloads as the helper set them"
    check_traffic(result, received, superpackets=helper_uso, how="least privilege (b)")


def test_handoff_round_trip_keeps_every_fd_and_sets_cloexec(open_in_ns):
    ns, qset = open_in_ns(queues=3)
    sender, receiver = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with sender, receiver:
        send_queue_fds(sender, [q.fileno() for q in qset.queues()])
        fds = receive_queue_fds(receiver, timeout=5)
    try:
        assert len(fds) == 3 and not {f for f in fds} & {q.fileno() for q in qset.queues()}
        assert all(tun.get_iff(fd)[0] == qset.name for fd in fds)
        assert not any(os.get_inheritable(fd) for fd in fds), "received fds are close-on-exec"
    finally:
        for fd in fds:
            os.close(fd)


def test_handoff_of_256_queues_spans_several_messages(open_in_ns):
    ns, qset = open_in_ns(queues=tun.MAX_QUEUES, offloads=False)
    before = open_fds()
    sender, receiver = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with sender, receiver:
        send_queue_fds(sender, [q.fileno() for q in qset.queues()])
        adopted = receive_queue_set(receiver, timeout=5)
    assert tun.MAX_QUEUES > FDS_PER_MESSAGE
    with adopted:
        assert len(adopted.queues()) == tun.MAX_QUEUES and adopted.name == qset.name
    assert open_fds() == before


@needs_uso
def test_adopting_narrows_to_the_kill_switch(open_in_ns, monkeypatch):
    ns, qset = open_in_ns(queues=2)
    assert qset.offload_mask == FULL
    fd = os.dup(qset.queues()[1].fileno())
    monkeypatch.setenv("TIO_LINUX_DISABLE", "uso")
    adopted = ns.run(adopt_queues, [fd])
    with adopted:
        assert not adopted.offload_mask & tun.USO_MASK, "TIO_LINUX_DISABLE=uso narrows an adopted device"
        assert ns.run(link.device_offloads, qset.name) == adopted.offload_mask


def test_adopting_without_a_visible_device_negotiates(open_in_ns):
    ns, qset = open_in_ns(queues=2, uso=False)
    fd = os.dup(qset.queues()[1].fileno())
    # from the root namespace the device cannot be inspected: fall back to negotiating what the set wants
    assert link.device_offloads(qset.name) is None
    with adopt_queues([fd], uso=False) as adopted:
        assert adopted.offload_mask == TSO_ONLY


def test_adopt_queues_closes_every_fd_on_error(open_in_ns):
    ns, qset = open_in_ns(queues=2)
    good = os.dup(qset.queues()[0].fileno())
    read_end, write_end = os.pipe()
    os.close(write_end)
    before = open_fds()
    with pytest.raises(NotATunError, match="not an attached TUN"):
        ns.run(adopt_queues, [good, read_end])
    # counted, not compared: listing /proc/self/fd takes the lowest free number itself
    assert len(open_fds()) == len(before) - 2, "adopt_queues closes every fd it was given when it fails"


def test_add_refuses_a_queue_of_another_device(open_in_ns):
    ns, first = open_in_ns()
    _, other = open_in_ns(ns, queues=2)
    fd = os.dup(other.queues()[1].fileno())
    try:
        with pytest.raises(NotATunError, match=f"queue of {other.name}.*belong to {first.name}"):
            first.add(fd)
        os.fstat(fd)  # still the caller's
    finally:
        os.close(fd)


def test_adding_a_plain_fd_clears_offloads_the_device_kept(tio_netns, persistent_tun):
    ns = tio_netns()
    name = persistent_tun(ns, owner=None, multi_queue=False)
    ns.run(open_linux, name=name).close()  # leaves TSO/USO on the persistent device
    fd = ns.run(tun.attach, name.encode(), tun.IFF_TUN | tun.IFF_NO_PI).fd
    with ns.run(adopt_queues, [fd]) as adopted:
        assert isinstance(adopted.queues()[0], PlainQueue)
        assert ns.run(link.device_offloads, name) == 0, "an adopted plain queue is never sent superpackets"


def test_send_checks_every_fd_before_sending_anything(open_in_ns):
    ns, qset = open_in_ns(queues=2)
    _, other = open_in_ns(ns)
    read_end, write_end = os.pipe()
    sender, receiver = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with sender, receiver:
        try:
            with pytest.raises(NotATunError, match="not an attached TUN"):
                send_queue_fds(sender, [qset.queues()[0].fileno(), read_end])
            with pytest.raises(NotATunError, match="one device"):
                send_queue_fds(sender, [qset.queues()[0].fileno(), other.queues()[0].fileno()])
            for bad in ([], [True], [-1]):
                with pytest.raises((ConfigError, NotATunError)):
                    send_queue_fds(sender, bad)
        finally:
            os.close(read_end)
            os.close(write_end)
        with pytest.raises(HandoffError, match="in time"):
            receive_queue_fds(receiver, timeout=0.2)  # nothing was sent


def _send_raw(sock: socket.socket, data: bytes, fds: list[int]) -> None:
    socket.send_fds(sock, [data], fds)


@pytest.mark.parametrize(
    ("message", "fd_count", "words"),
    [
        (b"HELLO!!!", 1, "did not send a tio queue handoff"),
        (MAGIC + (2).to_bytes(2, "big") + (1).to_bytes(2, "big"), 1, "malformed"),  # index 1 first
        (MAGIC + (1).to_bytes(2, "big") + (0).to_bytes(2, "big"), 2, "malformed"),  # more fds than announced
        (MAGIC + (0).to_bytes(2, "big") + (0).to_bytes(2, "big"), 1, "malformed"),  # announces none
        (MAGIC + (2).to_bytes(2, "big") + (0).to_bytes(2, "big"), 1, "peer closed"),  # then closes
    ],
)
def test_receive_refuses_what_is_not_a_handoff_and_closes_what_came(message, fd_count, words):
    read_end, write_end = os.pipe()
    sender, receiver = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with receiver:
            with sender:
                _send_raw(sender, message, [read_end] * fd_count)
            before = open_fds()
            with pytest.raises(HandoffError, match=words):
                receive_queue_fds(receiver, timeout=2)
            assert open_fds() == before, "a refused handoff closes every fd it received"
    finally:
        os.close(read_end)
        os.close(write_end)


def test_receive_restores_the_socket_timeout_and_refuses_other_sockets():
    sender, receiver = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with sender, receiver:
        receiver.settimeout(7.0)
        with pytest.raises(HandoffError, match="in time"):
            receive_queue_fds(receiver, timeout=0.1)
        assert receiver.gettimeout() == 7.0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as inet, pytest.raises(ConfigError, match="AF_UNIX"):
        receive_queue_fds(inet, timeout=0.1)
