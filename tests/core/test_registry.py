"""Backend discovery, selection, option validation and config loading."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.support.plugin_dists import backend_plugin, make_dist
from tio_core import (
    BackendConflict,
    BackendDef,
    BackendNotFound,
    ConfigError,
    Option,
    QueueSet,
    hookimpl,
    open_from_config,
)
from tio_core.plugin.registry import BackendRegistry


def names(registry):
    return [spec.name for spec in registry.available_backends()]


def test_entry_point_backend_is_discovered_with_its_distribution(plugin_dir):
    backend_plugin(plugin_dir, "tio-loop", "tio_loop_a", "loop")
    registry = BackendRegistry()
    spec = registry.get("loop")
    assert spec.distribution == "tio-loop"
    assert spec.version == "1.2.3"
    assert spec.description == "memory loop from tio-loop"
    assert list(spec.options) == ["depth"]


def test_open_backend_fills_defaults_and_returns_a_queue_set(plugin_dir):
    backend_plugin(plugin_dir, "tio-loop", "tio_loop_b", "loop")
    registry = BackendRegistry()
    with registry.open_backend("loop") as qs:
        assert isinstance(qs, QueueSet)
        assert qs.depth == 4
        (queue,) = qs.queues()
        queue.write(b"\x45hello")
        assert [bytes(p.data) for p in queue.read()] == [b"\x45hello"]
    assert registry.open_backend("loop", depth=9).depth == 9


def test_broken_plugin_does_not_hide_the_others(plugin_dir):
    make_dist(plugin_dir, "tio-broken", "tio_broken_c", "raise ImportError('missing libfoo')\n", impl=False)
    backend_plugin(plugin_dir, "tio-loop", "tio_loop_c", "loop")
    registry = BackendRegistry()
    assert "loop" in names(registry)
    errors = [e for e in registry.load_errors() if e.distribution == "tio-broken"]
    assert len(errors) == 1
    assert "missing libfoo" in errors[0].message


def test_misspelled_hook_is_an_error_not_silence(plugin_dir):
    body = textwrap.dedent(
        """
        from tio_core import hookimpl

        @hookimpl
        def tio_register_backend():
            return []
        """
    )
    make_dist(plugin_dir, "tio-typo", "tio_typo_d", body, impl=False)
    registry = BackendRegistry()
    (error,) = [e for e in registry.load_errors() if e.distribution == "tio-typo"]
    assert "tio_register_backend" in error.message


def test_two_distributions_claiming_one_name_is_a_conflict(plugin_dir):
    # Same entry-point name too: pluggy alone would silently keep only one.
    backend_plugin(plugin_dir, "tio-one", "tio_one_e", "loop", entry_name="loop")
    backend_plugin(plugin_dir, "tio-two", "tio_two_e", "loop", entry_name="loop")
    registry = BackendRegistry()
    with pytest.raises(BackendConflict) as info:
        registry.open_backend("loop")
    assert "tio-one" in str(info.value) and "tio-two" in str(info.value)
    assert any("tio-one" in e.message and "tio-two" in e.message for e in registry.load_errors())


def test_unknown_backend_lists_names_and_suggests(plugin_dir):
    backend_plugin(plugin_dir, "tio-loop", "tio_loop_f", "loop")
    registry = BackendRegistry()
    with pytest.raises(BackendNotFound) as info:
        registry.open_backend("lop")
    message = str(info.value)
    assert "'lop'" in message and "Did you mean 'loop'?" in message and "loop" in message.split("Available:")[1]


def test_unknown_option_names_option_and_backend(plugin_dir):
    backend_plugin(plugin_dir, "tio-loop", "tio_loop_g", "loop")
    registry = BackendRegistry()
    with pytest.raises(ConfigError, match=r"backend 'loop' has no option 'dept'.*did you mean 'depth'"):
        registry.open_backend("loop", dept=3)


@pytest.mark.parametrize("value", ["3", 3.5, True, None.__class__])
def test_mistyped_option_is_a_config_error(plugin_dir, value):
    backend_plugin(plugin_dir, "tio-loop", "tio_loop_h", "loop")
    registry = BackendRegistry()
    with pytest.raises(ConfigError, match=r"backend 'loop': option 'depth' must be an integer"):
        registry.open_backend("loop", depth=value)


def test_autoload_can_be_disabled(plugin_dir, monkeypatch):
    backend_plugin(plugin_dir, "tio-loop", "tio_loop_i", "loop")
    monkeypatch.setenv("TIO_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert "loop" not in names(BackendRegistry())


def test_autoload_can_be_restricted_to_a_list(plugin_dir, monkeypatch):
    backend_plugin(plugin_dir, "tio-loop", "tio_loop_j", "loop")
    backend_plugin(plugin_dir, "tio-other", "tio_other_j", "other")
    monkeypatch.setenv("TIO_PLUGINS", "tio-other")
    assert names(BackendRegistry()) == ["other"]


class EmptySet(QueueSet):
    """A set without queues: what the factories below return."""

    def queues(self):
        return []

    def add(self, fd):
        raise ValueError(fd)


class RecordingFactory:
    """A backend factory that keeps the options of each call and returns an EmptySet."""

    def __init__(self):
        self.calls = []

    def __call__(self, **options):
        self.calls.append(options)
        return EmptySet()


class RuntimePlugin:
    def __init__(self, backend_name, factory):
        self.backend_name, self.factory = backend_name, factory

    @hookimpl
    def tio_register_backends(self):
        return [BackendDef(self.backend_name, "runtime", self.factory, (Option("flag", bool, False),))]


def test_runtime_registration_with_callable_factory(monkeypatch):
    monkeypatch.setenv("TIO_DISABLE_PLUGIN_AUTOLOAD", "1")
    registry = BackendRegistry()
    factory = RecordingFactory()
    registry.register(RuntimePlugin("mem", factory))
    assert isinstance(registry.open_backend("mem", flag=True), EmptySet)
    assert factory.calls == [{"flag": True}]
    assert registry.get("mem").distribution == "<runtime>"


def test_factory_returning_non_queue_set_is_rejected(monkeypatch):
    monkeypatch.setenv("TIO_DISABLE_PLUGIN_AUTOLOAD", "1")
    registry = BackendRegistry()
    registry.register(RuntimePlugin("bad", lambda flag: object()))
    with pytest.raises(Exception, match="not a QueueSet"):
        registry.open_backend("bad")


def test_plugin_returning_garbage_is_kept_as_load_error(monkeypatch):
    monkeypatch.setenv("TIO_DISABLE_PLUGIN_AUTOLOAD", "1")

    class Garbage:
        @hookimpl
        def tio_register_backends(self):
            return ["not a BackendDef"]

    registry = BackendRegistry()
    registry.register(Garbage(), name="garbage")
    assert registry.available_backends() == []
    assert "expected BackendDef" in registry.load_errors()[0].message


def test_open_from_toml_file(plugin_dir, tmp_path):
    backend_plugin(plugin_dir, "tio-loop", "tio_loop_k", "loop")
    config = tmp_path / "tio.toml"
    config.write_text('[tio]\nbackend = "loop"\n[tio.options]\ndepth = 7\n')
    registry = BackendRegistry()
    assert open_from_config(config, registry=registry).depth == 7
    assert open_from_config({"tio": {"backend": "loop"}}, registry=registry).depth == 4


@pytest.mark.parametrize(
    "text,match",
    [
        ("[tio]\nbackend = 'loop'\n[tio.options]\ndepth = 'x'\n", "must be an integer"),
        ("[tio]\nbackend = 'loop'\nspeed = 1\n", "unknown keys: speed"),
        ("[other]\n", r"no \[tio\] table"),
        ("[tio]\noptions = {}\n", "needs backend"),
        ("[tio\n", "not valid TOML"),
    ],
)
def test_bad_config_is_a_config_error(plugin_dir, tmp_path, text, match):
    backend_plugin(plugin_dir, "tio-loop", "tio_loop_l", "loop")
    config = tmp_path / "tio.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=match):
        open_from_config(config, registry=BackendRegistry())


def test_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        open_from_config(tmp_path / "absent.toml", registry=BackendRegistry(autoload=False))


def test_discovery_imports_no_heavy_modules():
    code = (
        "import sys, tio_core; tio_core.available_backends();"
        "heavy = [m for m in ('scapy', 'pyroute2', 'tio_linux.backend', 'tio_pcap.backend', 'tio_fake.backend')"
        " if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_an_option_called_name_reaches_the_factory(monkeypatch):
    monkeypatch.setenv("TIO_DISABLE_PLUGIN_AUTOLOAD", "1")
    registry = BackendRegistry()
    factory = RecordingFactory()

    class Plugin:
        @hookimpl
        def tio_register_backends(self):
            return [BackendDef("named", "takes a name option", factory, (Option("name", str, "x"),))]

    registry.register(Plugin())
    registry.open_backend("named", name="tio7")
    assert factory.calls == [{"name": "tio7"}]


def test_plugin_with_only_a_contract_harness_hook_is_accepted(plugin_dir):
    body = """
    from tio_core import hookimpl

    @hookimpl
    def tio_register_contract_harness():
        return {}
    """
    make_dist(plugin_dir, "tio-harness-only", "tio_harness_only", body, impl=False)
    errors = [e for e in BackendRegistry().load_errors() if e.distribution == "tio-harness-only"]
    assert errors == [], "every tio hook counts: a plugin defining any one of them is not 'without hooks'"
