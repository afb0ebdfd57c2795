"""`tio info` and `tio backends`: structured --json, exit codes, the autoload switch, -v origins (issue 15 item 3)."""

from __future__ import annotations

import json
import os

import tio_fake.plugin
import tio_pcap.plugin
from tests.cli.helpers import tio
from tests.support.plugin_dists import backend_plugin, make_dist


def test_info_json_has_typed_queue_fields():
    result = tio("info", "fake:queues=2", "capabilities=tso", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert (info["backend"], info["distribution"]) == ("fake", "tio-fake")
    assert info["options"] == {"queues": 2, "capabilities": "tso"}
    assert info["queues"] == [
        {"index": i, "tso": True, "uso": False, "write_gso": {"tcp": True, "udp": False}} for i in range(2)
    ]
    assert info["device"] == {}


def test_info_text_shows_a_queue_table():
    result = tio("info", "fake")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("backend  fake (tio-fake ")
    header = next(i for i, line in enumerate(lines) if line.startswith("queue"))
    assert lines[header].split() == ["queue", "tso", "uso", "write_gso", "tcp", "write_gso", "udp"]
    assert lines[header + 1].split() == ["0", "no", "no", "yes", "yes"]


def test_backends_json_lists_backends_with_typed_options():
    result = tio("backends", "--json")
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    assert listing["autoload"] is True and listing["load_errors"] == []
    by_name = {b["name"]: b for b in listing["backends"]}
    assert {"fake", "linux", "pcap"} <= set(by_name)
    pcap = by_name["pcap"]
    assert pcap["entry_point"] == "tio.backends: pcap = tio_pcap.plugin"
    assert pcap["module_file"] == tio_pcap.plugin.__file__
    options = {o["name"]: o for o in pcap["options"]}
    assert options["loop"] == {
        "name": "loop",
        "type": "integer",
        "default": 1,
        "required": False,
        "choices": [],
        "role": None,
        "help": options["loop"]["help"],
    }
    assert options["path"]["role"] == "input-file" and options["output"]["role"] == "output-file"
    assert "bitrate" in options["pacing"]["choices"]


def test_backends_verbose_shows_entry_point_and_module_file():
    result = tio("backends", "-v")
    assert result.returncode == 0
    assert "entry point  tio.backends: fake = tio_fake.plugin" in result.stdout
    assert f"module file  {tio_fake.plugin.__file__}" in result.stdout
    assert "factory      tio_pcap.backend:open_pcap" in result.stdout


def test_a_plugin_that_failed_to_load_makes_backends_exit_1_and_json_still_lists_everything(tmp_path):
    make_dist(tmp_path, "tio-broken", "tio_broken_b", "raise RuntimeError('no driver')\n", impl=False)
    backend_plugin(tmp_path, "tio-loop", "tio_loop_b", "loop")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    env.pop("TIO_PLUGINS", None)
    text = tio("backends", env=env)
    assert text.returncode == 1, "tio backends exits 1 when a plugin failed to load"
    assert "tio-broken:tio_broken_b (tio-broken): import failed: RuntimeError: no driver" in text.stdout
    listing = tio("backends", "--json", env=env)
    assert listing.returncode == 1
    data = json.loads(listing.stdout)
    assert "loop" in {b["name"] for b in data["backends"]}
    assert data["load_errors"] == [
        {
            "plugin": "tio-broken:tio_broken_b",
            "distribution": "tio-broken",
            "version": "1.2.3",
            "entry_point": "tio_broken_b = tio_broken_b",
            "module_file": str(tmp_path / "tio_broken_b.py"),
            "message": "import failed: RuntimeError: no driver",
        }
    ]


def test_autoload_switch_says_autoload_is_off():
    env = dict(os.environ, TIO_DISABLE_PLUGIN_AUTOLOAD="1")
    result = tio("backends", env=env)
    assert result.returncode == 0
    assert "plugin autoload is off" in result.stdout and "no backends installed" not in result.stdout
    data = json.loads(tio("backends", "--json", env=env).stdout)
    assert data["autoload"] is False and data["backends"] == []
