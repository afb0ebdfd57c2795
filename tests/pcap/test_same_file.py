"""Recording over the capture being read is refused up front (issue 12, item 1, the pcap part).

Inside one pcap backend: output= naming the file that path= reads (the same string, a relative
spelling, a symlink either way, a hard link) is a ConfigError naming both, and the capture is
untouched. The plugin also declares which options name files it reads and which it writes, so
the CLI can make the same check across the two backends of a run.
"""

from __future__ import annotations

import os

import pytest

from tests.pcap.captures import ip_packets, write_pcap
from tio_core import open_backend
from tio_core.errors import ConfigError
from tio_pcap.plugin import OPTIONS


def spellings(tmp_path):
    """(path, output) pairs that all name the one capture tmp_path/in.pcap."""
    capture = tmp_path / "in.pcap"
    (tmp_path / "sub").mkdir()
    os.symlink(capture, tmp_path / "link-to-in.pcap")
    os.symlink("../in.pcap", tmp_path / "sub" / "relative-link.pcap")
    os.link(capture, tmp_path / "hard.pcap")
    return {
        "same string": ("in.pcap", "in.pcap"),
        "relative and absolute": ("in.pcap", str(capture)),
        "dot segments": (str(capture), "sub/../in.pcap"),
        "output a symlink to the capture": (str(capture), "link-to-in.pcap"),
        "path a symlink, output the capture": ("link-to-in.pcap", "in.pcap"),
        "output a relative symlink": ("in.pcap", "sub/relative-link.pcap"),
        "hard link": ("in.pcap", "hard.pcap"),
    }


CASES = [
    "same string",
    "relative and absolute",
    "dot segments",
    "output a symlink to the capture",
    "path a symlink, output the capture",
    "output a relative symlink",
    "hard link",
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("output_format", [None, "pcapng"])
def test_recording_over_the_replayed_capture_is_refused_and_the_capture_kept(
    tmp_path, monkeypatch, case, output_format
):
    capture = write_pcap(tmp_path / "in.pcap", ip_packets(5))
    before = capture.read_bytes()
    path, output = spellings(tmp_path)[case]
    monkeypatch.chdir(tmp_path)
    options = {"output_format": output_format} if output_format else {}
    with pytest.raises(ConfigError) as caught:
        open_backend("pcap", path=path, output=output, **options)
    message = str(caught.value)
    assert repr(path) in message and repr(output) in message, f"the error names both paths: {message}"
    assert "same file" in message
    assert capture.read_bytes() == before, "rule: a refused recording leaves the capture being read untouched"


def test_a_distinct_output_is_not_mistaken_for_the_capture(tmp_path, monkeypatch):
    write_pcap(tmp_path / "in.pcap", ip_packets(2))
    (tmp_path / "other").mkdir()
    write_pcap(tmp_path / "other" / "in.pcap", ip_packets(1))  # same name, another file
    monkeypatch.chdir(tmp_path)
    for output in ("other/in.pcap", "new.pcap", "other/new.pcapng"):
        with open_backend("pcap", path="in.pcap", output=output) as qs:
            assert len(qs.queues()[0].read()) == 2


def test_adopting_the_output_file_as_a_capture_is_refused(tmp_path):
    out = tmp_path / "out.pcap"
    with open_backend("pcap", output=str(out)) as qs:
        qs.queues()[0].write(ip_packets(1)[0])
        qs.flush()
        fd = os.open(out, os.O_RDONLY)
        try:
            with pytest.raises(ConfigError, match="same file") as caught:
                qs.add(fd)
            assert str(out) in str(caught.value)
            assert len(qs.queues()) == 1
            os.fstat(fd)  # refused: the descriptor stays the caller's
        finally:
            os.close(fd)


def test_file_options_are_declared_for_a_cross_backend_check():
    """The CLI refuses a run whose sink writes a file its source reads; it learns which options
    name files from the plugin, without opening anything."""
    declared = {option.name: option for option in OPTIONS}
    from tio_pcap.plugin import FILE_ROLES

    assert FILE_ROLES == {"path": "input-file", "output": "output-file"}
    for name in FILE_ROLES:
        assert declared[name].type is str


def test_a_second_backend_recording_over_a_capture_the_first_reads_is_refused(tmp_path, monkeypatch):
    """Two backends of one run (what `tio replay X --to pcap:output=X` opens): the output's open
    finds the capture open for reading in this process and refuses before truncating it."""
    capture = write_pcap(tmp_path / "in.pcap", ip_packets(5))
    before = capture.read_bytes()
    os.symlink(capture, tmp_path / "link.pcap")
    monkeypatch.chdir(tmp_path)
    with open_backend("pcap", path=str(capture)) as source:
        for output in ("in.pcap", "link.pcap"):
            with pytest.raises(ConfigError, match="same file") as caught:
                open_backend("pcap", output=output)
            assert repr(output) in str(caught.value) and str(capture) in str(caught.value)
        assert capture.read_bytes() == before, "rule: the capture being read is untouched"
        assert [bytes(p.data) for p in source.queues()[0].read()] == ip_packets(5)
    with open_backend("pcap", output="in.pcap"):  # nobody reads it any more: recording over it is the user's call
        pass


def test_a_file_open_only_for_writing_is_not_a_capture_being_read(tmp_path):
    out = tmp_path / "out.pcap"
    out.write_bytes(b"")
    fd = os.open(out, os.O_WRONLY)  # e.g. a shell redirection of stdout to the output
    try:
        with open_backend("pcap", output=str(out)) as qs:
            qs.queues()[0].write(ip_packets(1)[0])
    finally:
        os.close(fd)
    from tio_pcap.reader import read_packets

    assert read_packets(out) == ip_packets(1)
