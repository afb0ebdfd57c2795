"""Backend SPECs: NAME:key=value,... with a way to write a comma in a value (issue 12 item 13)."""

from __future__ import annotations

import shutil

import pytest

from tests.cli.helpers import DEMO, DEMO_PACKETS, tio_json
from tio_core.cli.spec import format_spec, parse_backend_spec, split_items
from tio_core.errors import ConfigError
from tio_core.plugin.registry import default_registry


@pytest.mark.parametrize(
    "text,items",
    [
        ("a=1,b=2", ["a=1", "b=2"]),
        (r"path=a\,b.pcap,loop=2", ["path=a,b.pcap", "loop=2"]),
        ('path="a,b.pcap",loop=2', ["path=a,b.pcap", "loop=2"]),
        (r'path="say \"hi\", twice"', ['path=say "hi", twice']),
        (r"path=C:\\dir", [r"path=C:\dir"]),
        ("", [""]),
    ],
)
def test_split_items_unquotes_and_unescapes(text, items):
    assert list(split_items(text)) == items


@pytest.mark.parametrize("text,message", [('path="a,b', "unterminated double quote"), ("path=a\\", "lone backslash")])
def test_broken_quoting_is_a_config_error(text, message):
    with pytest.raises(ConfigError, match=message):
        list(split_items(text))


def test_typed_options_and_list_options():
    name, options = parse_backend_spec(
        "linux:name=t0,queues=2,addresses=198.18.0.1/24,addresses=fd00::1/64", default_registry()
    )
    assert name == "linux"
    assert options == {"name": "t0", "queues": 2, "addresses": ["198.18.0.1/24", "fd00::1/64"]}


@pytest.mark.parametrize("path", ["a,b.pcap", 'q"uote.pcap', "back\\slash,.pcap", "plain.pcap"])
def test_format_spec_round_trips(path):
    text = format_spec("pcap", {"path": path, "loop": 2})
    assert parse_backend_spec(text, default_registry()) == ("pcap", {"path": path, "loop": 2})


def test_a_capture_whose_path_holds_a_comma_replays_and_records(tmp_path):
    capture = tmp_path / "with,comma.pcap"
    shutil.copy(DEMO, capture)
    escaped = str(capture).replace(",", "\\,")
    summary = tio_json("forward", "--from", f"pcap:path={escaped}", "--to", f'pcap:output="{tmp_path}/out,1.pcap"')
    assert summary["packets_read"] == DEMO_PACKETS
    assert summary["route"]["source"]["options"]["path"] == str(capture)
    assert (tmp_path / "out,1.pcap").stat().st_size > 0
