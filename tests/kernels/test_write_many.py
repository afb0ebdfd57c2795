"""write_many, the C write loop (csrc/writeloop.c), against its pure twin (kernels/write_many.py).

Rule: for the same fd state and the same batch both deliver the same bytes and
return the same (stop, written, bytes, error), also on a bad fd, EINVAL and
EAGAIN, and refuse the same bad arguments with the same exception type before
writing anything.
"""

from __future__ import annotations

import fcntl
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tio_core.kernels.native import built_extension
from tio_core.kernels.write_many import py_write_many

EXTENSION = built_extension()
pytestmark = pytest.mark.skipif(EXTENSION is None, reason="C kernels not built")
c_write_many = EXTENSION.write_many if EXTENSION is not None else None
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
IMPLEMENTATIONS = {"c": lambda *a: c_write_many(*a), "pure": py_write_many}


def _pipe(size: int | None = None) -> tuple[int, int]:
    read_end, write_end = os.pipe2(os.O_NONBLOCK)
    if size is not None:
        fcntl.fcntl(write_end, F_SETPIPE_SZ, size)
    return read_end, write_end


def _drain(fd: int) -> bytes:
    out = b""
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return out
        if not chunk:
            return out
        out += chunk


def _outcome(fn, *args) -> tuple:
    try:
        return ("ok", fn(*args))
    except Exception as exc:  # noqa: BLE001 - the exception type is compared
        return ("raised", type(exc))


def _through_pipe(name: str, packets, header, start=0, max_size=65535, pipe_size=None) -> tuple:
    read_end, write_end = _pipe(pipe_size)
    try:
        result = _outcome(IMPLEMENTATIONS[name], write_end, packets, header, start, max_size)
        return result, _drain(read_end)
    finally:
        os.close(read_end)
        os.close(write_end)


def _agree(packets, header=b"", start=0, max_size=65535, pipe_size=None) -> tuple:
    c = _through_pipe("c", packets, header, start, max_size, pipe_size)
    pure = _through_pipe("pure", packets, header, start, max_size, pipe_size)
    assert c == pure, "rule: the C write loop and its pure twin deliver the same bytes and return the same"
    return c


def test_a_batch_is_delivered_in_order_with_the_header_before_each_packet():
    (status, result), delivered = _agree([b"one", bytearray(b"two"), memoryview(b"three")], b"HDR")
    assert status == "ok" and result == (3, 3, 11, 0)
    assert delivered == b"HDRoneHDRtwoHDRthree"


def test_without_a_header_packets_go_out_as_they_are():
    (_, result), delivered = _agree([b"a" * 100, b"b" * 200], b"")
    assert result == (2, 2, 300, 0) and delivered == b"a" * 100 + b"b" * 200


def test_start_skips_what_was_written_before():
    (_, result), delivered = _agree([b"x", b"y", b"z"], b"", start=2)
    assert result == (3, 1, 1, 0) and delivered == b"z"


@pytest.mark.parametrize("bad", [b"", b"q" * 101], ids=["empty", "too-long"])
def test_a_packet_of_no_writable_size_stops_the_loop_before_it(bad):
    (_, result), delivered = _agree([b"first", bad, b"never"], b"", max_size=100)
    assert result == (1, 1, 5, -1), "rule: the loop stops at the refused packet, nothing written for it"
    assert delivered == b"first"


def test_a_bad_fd_stops_at_the_first_packet_with_ebadf():
    read_end, write_end = os.pipe()
    os.close(read_end)
    os.close(write_end)  # a closed descriptor number
    results = {name: _outcome(fn, write_end, [b"a", b"b"], b"", 0, 100) for name, fn in IMPLEMENTATIONS.items()}
    assert results["c"] == results["pure"] == ("ok", (0, 0, 0, 9)), "rule: same EBADF from both"


def test_einval_names_the_packet_the_kernel_refused():
    # an eventfd takes exactly 8 bytes per write and refuses anything else with EINVAL
    got = {}
    for name, fn in IMPLEMENTATIONS.items():
        fd = os.eventfd(0, os.EFD_NONBLOCK)
        try:
            got[name] = (
                _outcome(fn, fd, [(1).to_bytes(8, "little"), b"odd", (2).to_bytes(8, "little")], b"", 0, 99),
                os.eventfd_read(fd),
            )
        finally:
            os.close(fd)
    assert got["c"] == got["pure"] == (("ok", (1, 1, 8, 22)), 1), "rule: same EINVAL at the same index"


def test_eagain_stops_at_the_packet_that_did_not_fit():
    packets = [bytes([n]) * 1000 for n in range(10)]
    (_, result), delivered = _agree(packets, b"", pipe_size=4096)
    stop = result[0]
    assert 0 < stop < 10 and result == (stop, stop, stop * 1000, 11), "rule: EAGAIN at the first packet that waits"
    assert delivered == b"".join(packets[:stop])


@pytest.mark.parametrize(
    "packets, start",
    [
        ([b"ok", 5], 0),  # not a buffer
        ([b"ok", memoryview(bytes(8))[::2]], 0),  # not C-contiguous
        ([b"ok", "text"], 0),
        ([b"ok"], 2),  # start beyond the batch
        ([b"ok"], -1),
        (7, 0),  # not a sequence
    ],
    ids=["int", "strided", "str", "start-beyond", "start-negative", "not-a-sequence"],
)
def test_bad_arguments_raise_the_same_before_anything_is_written(packets, start):
    (status, kind), delivered = _agree(packets, b"", start=start)
    assert status == "raised" and delivered == b"", "rule: a bad argument writes nothing"


def test_a_released_view_raises_before_anything_is_written():
    for name in IMPLEMENTATIONS:
        view = memoryview(b"gone")
        view.release()
        (status, kind), delivered = _through_pipe(name, [b"ok", view], b"")
        assert (status, kind, delivered) == ("raised", ValueError, b""), name


@settings(max_examples=60, deadline=None)
@given(
    packets=st.lists(st.binary(min_size=0, max_size=300), max_size=12),
    header=st.sampled_from([b"", bytes(10), b"\x01\x02"]),
    max_size=st.integers(1, 400),
)
def test_twins_agree_on_any_batch(packets, header, max_size):
    _agree(packets, header, 0, max_size)


@pytest.mark.parametrize("env_value, expected", [(None, "write_many"), ("1", "py_write_many")])
def test_the_loop_in_use_is_c_unless_tio_pure_selects_the_twin(env_value, expected):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TIO_PURE"}
    if env_value is not None:
        env["TIO_PURE"] = env_value
    out = subprocess.run(
        [sys.executable, "-c", "from tio_core.kernels.write_many import write_many; print(write_many.__name__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == expected, "rule: tio_core.kernels.native picks the write loop like every kernel"
