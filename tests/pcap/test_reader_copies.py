"""The reader copies a capture once: a small file is read whole and rewound in memory, a large one streams
through one reused chunk that is never written while a view of it is alive."""

from __future__ import annotations

import io
import os

from tests.pcap.captures import RAW, epb, idb, ip_packets, shb, write_pcap
from tio_pcap.reader import CaptureReader


class CountingFile(io.FileIO):
    """A real file that counts the bytes the reader pulls from it."""

    def __init__(self, path: os.PathLike[str] | str) -> None:
        super().__init__(path, "rb")
        self.bytes_read = 0

    def readinto(self, buffer) -> int:  # type: ignore[override]
        got = super().readinto(buffer) or 0
        self.bytes_read += got
        return got

    def read(self, size: int = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data


def _all_packets(reader: CaptureReader, batch: int = 7) -> list[bytes]:
    got: list[bytes] = []
    while reader.read_batch(batch, views := []):
        got.extend(bytes(v) for v in views)
        for view in views:
            view.release()
    return got


def test_a_small_capture_is_read_once_however_often_it_is_rewound(tmp_path):
    packets = ip_packets(40)
    for path in (write_pcap(tmp_path / "a.pcap", packets), tmp_path / "a.pcapng"):
        if path.suffix == ".pcapng":
            path.write_bytes(shb() + idb("<", RAW) + b"".join(epb("<", 0, n, p) for n, p in enumerate(packets)))
        size = path.stat().st_size
        stream = CountingFile(path)
        with CaptureReader(stream) as reader:
            passes = [_all_packets(reader)]
            for _ in range(3):
                reader.rewind()
                passes.append(_all_packets(reader))
        assert passes == [packets] * 4
        assert stream.bytes_read == size, (
            f"whole-file rule: a {size}-byte capture rewound 3 times was read {stream.bytes_read} bytes "
            f"({path.suffix}); it must be read exactly once"
        )


def test_a_capture_above_the_limit_streams_and_rereads_on_rewind(tmp_path):
    packets = ip_packets(40)
    path = write_pcap(tmp_path / "a.pcap", packets)
    size = path.stat().st_size
    stream = CountingFile(path)
    with CaptureReader(stream, whole_file_limit=size - 1, chunk_size=4096) as reader:
        first = _all_packets(reader)
        reader.rewind()
        second = _all_packets(reader)
    assert first == second == packets
    assert stream.bytes_read == 2 * size


def test_views_of_a_whole_capture_survive_rewinding(tmp_path):
    packets = ip_packets(12)
    path = write_pcap(tmp_path / "a.pcap", packets)
    with CaptureReader(path) as reader:
        kept: list[memoryview] = []
        reader.read_batch(100, kept)
        reader.rewind()
        again: list[memoryview] = []
        reader.read_batch(100, again)
        assert [bytes(v) for v in kept] == [bytes(v) for v in again] == packets


def test_a_kept_view_is_never_overwritten_by_the_next_chunk(tmp_path):
    # Streaming: the reader reuses its chunk only when no view of it is alive.
    packets = ip_packets(200)
    path = write_pcap(tmp_path / "a.pcap", packets)
    with CaptureReader(path, whole_file_limit=0, chunk_size=4096) as reader:
        kept: list[memoryview] = []
        reader.read_batch(3, kept)
        first = [bytes(v) for v in kept]
        rest: list[bytes] = []
        while reader.read_batch(5, views := []):
            rest.extend(bytes(v) for v in views)
            for view in views:
                view.release()  # these chunks may be reused; the kept one may not
        assert [bytes(v) for v in kept] == first == packets[:3], "a view handed out must stay valid while alive"
        assert first + rest == packets


def test_reading_a_closed_reader_is_refused(tmp_path):
    path = write_pcap(tmp_path / "a.pcap", ip_packets(3))
    reader = CaptureReader(path)
    reader.close()
    try:
        reader.read_batch(5, [])
    except ValueError as exc:
        assert "closed" in str(exc)
    else:
        raise AssertionError("read_batch on a closed reader must raise")
