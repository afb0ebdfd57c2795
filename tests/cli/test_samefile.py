"""A run never records over a capture it reads (issue 12 item 1): refused up front, the source untouched."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.cli.helpers import DEMO, tio
from tio_core import Option
from tio_core.plugin.options import INPUT_FILE, OUTPUT_FILE
from tio_core.plugin.registry import default_registry

RULE = "an output that is a capture read by the same run is refused before anything is opened"


@pytest.fixture
def capture(tmp_path):
    path = tmp_path / "in.pcap"
    shutil.copy(DEMO, path)
    return path


def assert_refused(result, capture, original: bytes) -> None:
    assert result.returncode == 2, f"{RULE}: exit 2, got {result.returncode}: {result.stderr}"
    assert "recording would truncate it" in result.stderr, RULE
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert capture.read_bytes() == original, f"{RULE}: the source is untouched"


def test_pcap_options_declare_their_roles():
    options = default_registry().get("pcap").options
    assert options["path"].role == INPUT_FILE and options["output"].role == OUTPUT_FILE


def test_role_is_checked():
    with pytest.raises(TypeError, match="role"):
        Option("x", str, role="sideways")
    with pytest.raises(TypeError, match="must be a string"):
        Option("x", int, role=INPUT_FILE)


def test_replay_onto_itself(capture):
    original = capture.read_bytes()
    assert_refused(tio("replay", str(capture), "--to", f"pcap:output={capture}"), capture, original)


def test_record_over_its_source(capture):
    original = capture.read_bytes()
    assert_refused(tio("record", "--from", f"pcap:path={capture}", str(capture)), capture, original)


def test_through_a_symlink(capture, tmp_path):
    original = capture.read_bytes()
    link = tmp_path / "link.pcap"
    link.symlink_to(capture)
    assert_refused(tio("replay", str(capture), "--to", f"pcap:output={link}"), capture, original)
    assert_refused(tio("record", "--from", f"pcap:path={link}", str(capture)), capture, original)


def test_through_a_relative_path(capture, tmp_path):
    original = capture.read_bytes()
    (tmp_path / "sub").mkdir()
    result = tio("replay", "sub/../in.pcap", "--to", "pcap:output=./in.pcap", cwd=tmp_path)
    assert_refused(result, capture, original)
    result = tio("forward", "--from", "pcap:path=in.pcap", "--to", f"pcap:output={capture}", cwd=tmp_path)
    assert_refused(result, capture, original)


def test_through_a_hard_link(capture, tmp_path):
    original = capture.read_bytes()
    hard = tmp_path / "hard.pcap"
    os.link(capture, hard)
    assert_refused(tio("replay", str(hard), "--to", f"pcap:output={capture}"), capture, original)


def test_across_the_two_backends_of_a_forward(capture, tmp_path):
    # the sink reads the capture (path=) while the source records into it (output=)
    original = capture.read_bytes()
    other = tmp_path / "other.pcap"
    shutil.copy(DEMO, other)
    result = tio("forward", "--from", f"pcap:path={other},output={capture}", "--to", f"pcap:path={capture}")
    assert_refused(result, capture, original)


def test_two_outputs_into_one_file(capture, tmp_path):
    out = tmp_path / "out.pcap"
    result = tio("forward", "--from", f"pcap:path={capture},output={out}", "--to", f"pcap:output={tmp_path}/./out.pcap")
    assert result.returncode == 2 and "are the same file" in result.stderr
    assert not out.exists(), "nothing was opened"


def test_a_different_file_is_fine(capture, tmp_path):
    result = tio("replay", str(capture), "--to", f"pcap:output={tmp_path / 'copy.pcap'}", "-q")
    assert result.returncode == 0, result.stderr
