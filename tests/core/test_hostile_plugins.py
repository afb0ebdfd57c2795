"""A bad plugin breaks nothing but itself (issue 12, item 3).

Each hostile behaviour is one installed distribution (a dist-info on
sys.path, found by the real entry-point discovery) beside a good one. Every
test checks the rule the same way: the bad plugin is listed as a load error
naming its distribution, in one line; the good plugin's backend and the
installed ``fake`` backend still open and work; opening the bad one gives a
one-line BackendLoadError that names the distribution.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from tests.support.plugin_dists import backend_plugin, make_dist
from tio_core import BackendLoadError, ConfigError
from tio_core.plugin.registry import BackendRegistry

RULE = "a bad plugin must not break the host (issue 12.3)"
HOSTILE_ENTRY = "evil"  # every hostile distribution's entry point, and its backend's name where it gives a usable one
TIO = str(Path(sys.executable).with_name("tio"))


def hostile_dist(plugin_dir: Path, case: str, body: str, **kwargs) -> tuple[str, str]:
    """Install a hostile plugin and a good "loop" plugin; return (distribution, module) of the hostile one."""
    ident = case.replace("-", "_")
    dist, module = f"tio-evil-{case}", f"tio_evil_{ident}"
    make_dist(plugin_dir, dist, module, body, entry_name=HOSTILE_ENTRY, impl=False, **kwargs)
    backend_plugin(plugin_dir, f"tio-good-{case}", f"tio_good_{ident}", "loop")
    return dist, module


def assert_host_unharmed(registry: BackendRegistry, dist: str, reason: str) -> None:
    errors = [e for e in registry.load_errors() if e.distribution == dist]
    assert errors, f"{RULE}: {dist} must be listed as a load error; load errors: {registry.load_errors()}"
    assert any(reason in e.message for e in errors), f"{RULE}: the reason {reason!r} is given; got {errors}"
    for error in errors:
        assert len(str(error).splitlines()) == 1 and dist in str(error), f"{RULE}: one line naming {dist}: {error}"
        assert error.version == "1.2.3" and error.entry_point.startswith(f"{HOSTILE_ENTRY} = "), error
    with registry.open_backend("loop") as loop:
        (queue,) = loop.queues()
        queue.write(b"\x45still works")
        assert [bytes(p.data) for p in queue.read()] == [b"\x45still works"], f"{RULE}: other plugins keep working"
    with registry.open_backend("fake") as fake:
        assert len(fake.queues()) == 1, f"{RULE}: the installed fake backend keeps working"
    assert {"loop", "fake"} <= {spec.name for spec in registry.available_backends()}
    with pytest.raises(BackendLoadError) as info:
        registry.open_backend(HOSTILE_ENTRY)
    message = str(info.value)
    assert dist in message and len(message.splitlines()) == 1, f"{RULE}: one-line BackendLoadError naming {dist}"


# -- a plugin whose import (or registration) fails ------------------------------------

IMPORT_CASES = {
    "sys-exit-0": ("import sys\nsys.exit(0)\n", "import failed: SystemExit: 0"),
    "sys-exit-text": ("import sys\nsys.exit('plugin gave up')\n", "import failed: SystemExit: plugin gave up"),
    "keyboard-interrupt": ("raise KeyboardInterrupt\n", "import failed: KeyboardInterrupt"),
    "base-exception": (
        "class Meltdown(BaseException):\n    pass\n\nraise Meltdown('core breach')\n",
        "import failed: Meltdown: core breach",
    ),
    "generator-exit": ("raise GeneratorExit('odd')\n", "import failed: GeneratorExit: odd"),
    "unprintable-exception": (
        "class Odd(Exception):\n    def __str__(self):\n        raise SystemExit(9)\n\nraise Odd()\n",
        "import failed: Odd: <message could not be printed>",
    ),
    "multiline-message": (
        "raise RuntimeError('first line\\n  second line \\x1b[31mred')\n",
        "import failed: RuntimeError: first line second line ?[31mred",
    ),
    "no-hooks": ("VALUE = 1\n", "defines no tio hook"),
    "dir-raises": ("def __dir__():\n    raise SystemExit(4)\n", "registration failed: SystemExit: 4"),
}


@pytest.mark.parametrize("case", IMPORT_CASES)
def test_plugin_failing_at_import_or_registration(plugin_dir, case):
    body, reason = IMPORT_CASES[case]
    dist, _ = hostile_dist(plugin_dir, case, body)
    assert_host_unharmed(BackendRegistry(), dist, reason)


def test_entry_point_naming_none(plugin_dir):
    dist, _ = hostile_dist(plugin_dir, "none", "PLUGIN = None\n", entry_value="tio_evil_none:PLUGIN")
    assert_host_unharmed(BackendRegistry(), dist, "names None")


def test_plugin_object_whose_equality_raises(plugin_dir):
    body = """
    from tio_core import BackendDef, hookimpl

    class Evil:
        __hash__ = object.__hash__

        def __eq__(self, other):
            raise KeyboardInterrupt

        @hookimpl
        def tio_register_backends(self):
            return [BackendDef("evil", "compares badly", "x:y")]

    PLUGIN = Evil()
    """
    dist, _ = hostile_dist(plugin_dir, "eq", body, entry_value="tio_evil_eq:PLUGIN")
    assert_host_unharmed(BackendRegistry(), dist, "registration failed: KeyboardInterrupt")


# -- a tio_register_backends hook that raises or returns garbage ----------------------

HOOK_CASES = {
    "hook-raises": (
        "raise RuntimeError('driver missing')",
        "tio_register_backends failed: RuntimeError: driver missing",
    ),
    "hook-exits": ("import sys\n    sys.exit(3)", "tio_register_backends failed: SystemExit: 3"),
    "hook-interrupts": ("raise KeyboardInterrupt", "tio_register_backends failed: KeyboardInterrupt"),
    "hook-returns-int": ("return 42", "returned a int, expected a list of definitions"),
    "hook-returns-str": ("return 'evil'", "returned a str, expected a list of definitions"),
    "hook-returns-mapping": ("return {'evil': 1}", "returned a dict, expected a list of definitions"),
    "hook-generator-breaks": (
        "yield BackendDef('evil', 'half', 'x:y')\n    raise ValueError('half way')",
        "tio_register_backends failed: ValueError: half way",
    ),
    "hook-endless": (
        "import itertools\n    return (BackendDef(f'evil{i}', 'x', 'x:y') for i in itertools.count())",
        "returned more than 256 definitions",
    ),
}


def hook_module(hook_body: str, setup: str = "") -> str:
    return (
        "from tio_core import BackendDef, Option, hookimpl\n\n"
        + textwrap.dedent(setup)
        + "\n\n@hookimpl\ndef tio_register_backends():\n    "
        + hook_body
        + "\n"
    )


@pytest.mark.parametrize("case", HOOK_CASES)
def test_backend_hook_raising_or_returning_garbage(plugin_dir, case):
    hook_body, reason = HOOK_CASES[case]
    dist, _ = hostile_dist(plugin_dir, case, hook_module(hook_body))
    assert_host_unharmed(BackendRegistry(), dist, reason)


# -- a BackendDef with garbage fields --------------------------------------------------

SLY_DEF = """
class Sly(BackendDef):
    def __getattribute__(self, name):
        if name == "options":
            raise SystemExit(5)
        return super().__getattribute__(name)
"""
FORCED_TYPE = """
forced = Option("depth", int, 1)
object.__setattr__(forced, "type", dict)
"""
DEF_CASES = {
    "name-none": ("BackendDef(None, 'd', 'x:y')", "backend name must be a string, got NoneType"),
    "name-int": ("BackendDef(42, 'd', 'x:y')", "backend name must be a string, got int"),
    "name-unusable": ("BackendDef('bad name:x', 'd', 'x:y')", "backend name 'bad name:x' is not usable"),
    "name-empty": ("BackendDef('', 'd', 'x:y')", "backend name '' is not usable"),
    "description-none": ("BackendDef('evil', None, 'x:y')", "description must be a string, got NoneType"),
    "description-int": ("BackendDef('evil', 7, 'x:y')", "description must be a string, got int"),
    "options-str": ("BackendDef('evil', 'd', 'x:y', 'depth')", "options must be a tuple of Option, got str"),
    "options-ints": ("BackendDef('evil', 'd', 'x:y', [1, 2])", "option 0 is a int, not an Option"),
    "options-none": ("BackendDef('evil', 'd', 'x:y', None)", "options must be a tuple of Option, got NoneType"),
    "option-default-mistyped": (
        "BackendDef('evil', 'd', 'x:y', (Option('depth', int, 'four'),))",
        "option 'depth': default or choices do not match its type (integer): 'four'",
    ),
    "option-duplicate": (
        "BackendDef('evil', 'd', 'x:y', (Option('depth', int, 1), Option('depth', int, 2)))",
        "option 'depth' is declared more than once",
    ),
    "option-name-not-identifier": (
        "BackendDef('evil', 'd', 'x:y', (Option('queue-depth', int, 1),))",
        "option name 'queue-depth' is not an identifier",
    ),
    "option-name-int": ("BackendDef('evil', 'd', 'x:y', (Option(5, int, 1),))", "option 0 name must be a string"),
    "option-choices-mistyped": (
        "BackendDef('evil', 'd', 'x:y', (Option('mode', str, 'a', choices=(1, 2)),))",
        "option 'mode': default or choices do not match its type (string)",
    ),
    "option-type-forced": ("BackendDef('evil', 'd', 'x:y', (forced,))", "unsupported type"),
    "factory-int": ("BackendDef('evil', 'd', 42)", "factory must be a callable or a 'module:attribute' string"),
    "factory-no-colon": ("BackendDef('evil', 'd', 'nocolon')", "got 'nocolon'"),
    "def-attribute-exits": ("Sly('evil', 'sly', 'x:y')", "SystemExit: 5"),
}
# what the two cases that need more than a BackendDef(...) call define first
DEF_SETUP = {"option-type-forced": FORCED_TYPE, "def-attribute-exits": SLY_DEF}


@pytest.mark.parametrize("case", DEF_CASES)
def test_backend_definition_with_garbage_fields(plugin_dir, case):
    definition, reason = DEF_CASES[case]
    setup = DEF_SETUP.get(case, "")
    dist, _ = hostile_dist(plugin_dir, case, hook_module(f"return [{definition}]", setup))
    registry = BackendRegistry()
    assert_host_unharmed(registry, dist, reason)
    assert all(
        e.message.startswith("tio_register_backends returned an invalid backend")
        for e in registry.load_errors()
        if e.distribution == dist
    )


def test_one_bad_definition_leaves_the_plugins_good_ones_usable(plugin_dir):
    body = hook_module(
        "return [BackendDef('fine', 'good', 'tio_good_mixed_impl:open_loop', (Option('depth', int, 2),)),"
        " BackendDef('evil', None, 'x:y')]"
    )
    dist, _ = hostile_dist(plugin_dir, "mixed", body)
    registry = BackendRegistry()
    assert_host_unharmed(registry, dist, "description must be a string")
    assert registry.open_backend("fine").depth == 2, f"{RULE}: the plugin's valid backend stays usable"


def test_garbage_definition_claiming_an_installed_name_hides_nothing(plugin_dir):
    dist, _ = hostile_dist(plugin_dir, "squatter", hook_module("return [BackendDef('fake', None, 42)]"))
    registry = BackendRegistry()
    assert registry.get("fake").distribution == "tio-fake", f"{RULE}: a rejected definition claims no name"
    assert any(e.distribution == dist and e.backend == "fake" for e in registry.load_errors())
    registry.open_backend("fake").close()


# -- a factory that fails when the backend is opened -------------------------------------

FACTORY_MODULE = """
from tio_core import BackendDef, hookimpl

VALUE = 3

def make(**options):
    {factory_body}

@hookimpl
def tio_register_backends():
    return [BackendDef("evil", "fails on open", {factory})]
"""
FACTORY_CASES = {
    "factory-raises": ("raise RuntimeError('no device')", "make", "RuntimeError: no device"),
    "factory-exits": ("import sys; sys.exit(2)", "make", "SystemExit: 2"),
    "factory-interrupts": ("raise KeyboardInterrupt", "make", "KeyboardInterrupt"),
    "factory-returns-garbage": ("return object()", "make", "returned object, not a QueueSet"),
    "factory-attribute-missing": ("pass", "'{module}:nothing'", "AttributeError"),
    "factory-not-callable": ("pass", "'{module}:VALUE'", "is a int, not a callable"),
    "factory-module-exits": ("pass", "'{module}_exits:make'", "cannot load"),
}


@pytest.mark.parametrize("case", FACTORY_CASES)
def test_factory_failing_on_open_is_a_backend_load_error(plugin_dir, case):
    factory_body, factory, reason = FACTORY_CASES[case]
    ident = case.replace("-", "_")
    module = f"tio_evil_{ident}"
    dist = f"tio-evil-{case}"
    body = FACTORY_MODULE.format(factory_body=factory_body, factory=factory.format(module=module))
    make_dist(plugin_dir, dist, module, body, HOSTILE_ENTRY, impl=False)
    (plugin_dir / f"{module}_exits.py").write_text("import sys\nsys.exit('factory module quits')\n")
    backend_plugin(plugin_dir, f"tio-good-{case}", f"tio_good_{ident}", "loop")
    registry = BackendRegistry()
    assert registry.load_errors() == [], "the definition itself is valid; it fails only when opened"
    with pytest.raises(BackendLoadError) as info:
        registry.open_backend("evil")
    message = str(info.value)
    assert "'evil'" in message and dist in message and reason in message, f"{RULE}: names backend, dist, exception"
    assert len(message.splitlines()) == 1
    registry.open_backend("loop").close()
    registry.open_backend("fake").close()


def test_factory_config_error_passes_through_unchanged(plugin_dir):
    body = FACTORY_MODULE.format(
        factory_body="from tio_core import ConfigError\n    raise ConfigError('depth must be even')", factory="make"
    )
    make_dist(plugin_dir, "tio-evil-config", "tio_evil_config", body, HOSTILE_ENTRY, impl=False)
    with pytest.raises(ConfigError) as info:
        BackendRegistry().open_backend("evil")
    assert type(info.value) is ConfigError and str(info.value) == "depth must be even", (
        "a TioError raised by a factory is the backend's own typed error: it passes unchanged"
    )


# -- a tio_register_benchmarks hook that raises or returns garbage ----------------------

BENCH_CASES = {
    "bench-str": ("return ['kernels']", "expected BenchmarkDef, got str"),
    "bench-name-none": ("return [BenchmarkDef(None, 'd', 'x:y')]", "benchmark name must be a string"),
    "bench-runner-int": ("return [BenchmarkDef('evil', 'd', 42)]", "runner must be a callable"),
    "bench-needs-root-str": ("return [BenchmarkDef('evil', 'd', 'x:y', 'yes')]", "needs_root must be a bool"),
    "bench-exits": ("raise SystemExit(6)", "tio_register_benchmarks failed: SystemExit: 6"),
}


def bench_module(hook_body: str, setup: str) -> str:
    """A plugin module whose tio_register_benchmarks hook runs ``hook_body``, after ``setup``."""
    return (
        "from tio_core import BackendDef, BenchmarkDef, hookimpl\nfrom tio_core.bench import Figure\n\n"
        + setup
        + "\n\n@hookimpl\ndef tio_register_benchmarks():\n    "
        + hook_body
        + "\n"
    )


@pytest.mark.parametrize("case", BENCH_CASES)
def test_benchmark_hook_raising_or_returning_garbage(plugin_dir, case):
    hook_body, reason = BENCH_CASES[case]
    backend_hook = "@hookimpl\ndef tio_register_backends():\n    return [BackendDef('evil', 'fine', 'x:y')]"
    dist, _ = hostile_dist(plugin_dir, case, bench_module(hook_body, backend_hook))
    registry = BackendRegistry()
    names = {bench.name for bench, _ in registry.benchmarks()}
    assert {"kernels", "coalesce", "fake"} <= names, f"{RULE}: the other benchmarks stay listed, got {names}"
    registry.benchmarks()  # asking again must not list the failure again
    errors = [e for e in registry.load_errors() if e.distribution == dist]
    assert len(errors) == 1 and reason in errors[0].message, f"{RULE}: listed once with the reason: {errors}"
    registry.open_backend("loop").close()
    registry.open_backend("fake").close()


RUNNER_CASES = {
    "runner-garbage": ("return ['12 GB/s']", "figure 0 is a str, not a Figure"),
    "runner-nan": ("return [Figure('x', float('nan'), 'GB/s')]", "value must be a finite number"),
    "runner-exits": ("import sys; sys.exit(1)", "SystemExit: 1"),
    "runner-interrupts": ("raise KeyboardInterrupt", "KeyboardInterrupt"),
}


@pytest.mark.parametrize("case", RUNNER_CASES)
def test_benchmark_runner_failure_is_a_backend_load_error(plugin_dir, case):
    runner_body, reason = RUNNER_CASES[case]
    runner = f"def run(quick=False):\n    {runner_body}"
    hostile_dist(plugin_dir, case, bench_module("return [BenchmarkDef('evil', 'fails', run)]", runner))
    (bench,) = [b for b, _ in BackendRegistry().benchmarks() if b.name == "evil"]
    with pytest.raises(BackendLoadError, match=rf"benchmark 'evil' failed: .*{reason}"):
        bench.run(quick=True)


# -- listing: entry point, version and module file -------------------------------------


def test_backend_spec_and_load_error_name_entry_point_and_module_file(plugin_dir):
    backend_plugin(plugin_dir, "tio-loop", "tio_loop_listing", "loop", entry_name="loop")
    make_dist(plugin_dir, "tio-evil-listing", "tio_evil_listing", "raise KeyboardInterrupt\n", HOSTILE_ENTRY, False)
    registry = BackendRegistry()
    spec = registry.get("loop")
    assert spec.entry_point == "loop = tio_loop_listing" and spec.version == "1.2.3"
    assert spec.module_file == str(plugin_dir / "tio_loop_listing.py")
    fake = registry.get("fake")
    assert fake.entry_point == "fake = tio_fake.plugin" and fake.module_file.endswith("tio_fake/plugin.py")
    (error,) = [e for e in registry.load_errors() if e.distribution == "tio-evil-listing"]
    assert (error.plugin, error.entry_point, error.version) == (
        "tio-evil-listing:evil",
        "evil = tio_evil_listing",
        "1.2.3",
    )
    assert error.module_file == str(plugin_dir / "tio_evil_listing.py"), "found without importing it again"


def test_installed_plugins_load_without_errors():
    assert BackendRegistry().load_errors() == [], "the plugins shipped with tio pass the registry's validation"


# -- the user's own Ctrl-C is not swallowed ----------------------------------------------


def run_python(code: str, plugin_dir: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("TIO_PLUGINS", "TIO_DISABLE_PLUGIN_AUTOLOAD")}
    env["PYTHONPATH"] = str(plugin_dir)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)


SELF_INTERRUPT = "import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(5)\n"
SWALLOWING = (
    "import os, signal, time\ntry:\n    os.kill(os.getpid(), signal.SIGINT)\n    time.sleep(5)\n"
    "except KeyboardInterrupt:\n    pass\n"
)


REPLACING = (
    "import os, signal, time\ntry:\n    os.kill(os.getpid(), signal.SIGINT)\n    time.sleep(5)\n"
    "except KeyboardInterrupt:\n    pass\nraise RuntimeError('masked')\n"
)


@pytest.mark.parametrize(
    "body", [SELF_INTERRUPT, SWALLOWING, REPLACING], ids=["propagated", "swallowed-by-plugin", "replaced-by-plugin"]
)
def test_real_ctrl_c_during_plugin_import_still_stops_the_host(tmp_path, body):
    make_dist(tmp_path, "tio-slow", "tio_slow", body, impl=False)
    result = run_python(
        "from tio_core.plugin.registry import BackendRegistry\nBackendRegistry()\nprint('ran on')\n", tmp_path
    )
    assert "ran on" not in result.stdout and result.returncode == -signal.SIGINT, (
        f"a real SIGINT while a plugin imports is the user's: the host stops (got {result.returncode}, "
        f"{result.stdout!r} {result.stderr[-300:]!r})"
    )


def test_real_ctrl_c_during_factory_still_stops_the_host(tmp_path):
    body = FACTORY_MODULE.format(factory_body=SELF_INTERRUPT.replace("\n", "\n    "), factory="make")
    make_dist(tmp_path, "tio-slow-open", "tio_slow_open", body, HOSTILE_ENTRY, impl=False)
    code = (
        "from tio_core.plugin.registry import BackendRegistry\n"
        "try:\n    BackendRegistry().open_backend('evil')\n"
        "except KeyboardInterrupt:\n    print('interrupted')\n"
    )
    result = run_python(code, tmp_path)
    assert result.stdout.strip() == "interrupted", f"a real SIGINT while opening reaches the host: {result}"


def test_registry_in_a_worker_thread_contains_a_raised_keyboard_interrupt(plugin_dir):
    dist, _ = hostile_dist(plugin_dir, "threaded", "raise KeyboardInterrupt\n")
    built = []
    worker = threading.Thread(target=lambda: built.append(BackendRegistry()))
    worker.start()
    worker.join(timeout=30)
    assert built, f"{RULE}: the registry is built in a worker thread too"
    assert_host_unharmed(built[0], dist, "import failed: KeyboardInterrupt")


def test_signal_handlers_are_restored_after_plugin_code_ran(plugin_dir):
    takeover = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nsignal.signal(signal.SIGTERM, print)\n"
    hostile_dist(plugin_dir, "handlers", takeover + "raise KeyboardInterrupt\n")
    before = {signum: signal.getsignal(signum) for signum in signal.valid_signals()}
    BackendRegistry().open_backend("loop").close()
    after = {signum: signal.getsignal(signum) for signum in signal.valid_signals()}
    assert after == before, "a plugin does not take over the host's signal handling"


# -- the command line survives a hostile plugin ----------------------------------------


def test_tio_backends_and_forward_survive_hostile_plugins(tmp_path):
    make_dist(tmp_path, "tio-evil-exit", "tio_evil_cli_exit", "import sys\nsys.exit(0)\n", "evil", impl=False)
    make_dist(tmp_path, "tio-evil-kbi", "tio_evil_cli_kbi", "raise KeyboardInterrupt\n", "evil2", impl=False)
    make_dist(
        tmp_path,
        "tio-evil-def",
        "tio_evil_cli_def",
        hook_module("return [BackendDef(None, None, 42)]"),
        "evil3",
        impl=False,
    )
    backend_plugin(tmp_path, "tio-loop", "tio_loop_cli_hostile", "loop")
    env = {k: v for k, v in os.environ.items() if k not in ("TIO_PLUGINS", "TIO_DISABLE_PLUGIN_AUTOLOAD")}
    env["PYTHONPATH"] = str(tmp_path)
    listing = subprocess.run([TIO, "backends"], capture_output=True, text=True, env=env, timeout=60)
    assert "Traceback" not in listing.stderr, listing.stderr
    names = [line.split()[0] for line in listing.stdout.splitlines()[1:] if line.strip()]
    assert {"fake", "loop", "pcap"} <= set(names), f"{RULE}: `tio backends` lists every good backend: {listing}"
    for dist in ("tio-evil-exit", "tio-evil-kbi", "tio-evil-def"):
        assert dist in listing.stdout, f"{RULE}: `tio backends` lists {dist} as a load error"
    forward = subprocess.run([TIO, "forward", "--quiet"], capture_output=True, text=True, env=env, timeout=120)
    assert forward.returncode == 0 and "Traceback" not in forward.stderr, f"{RULE}: `tio forward` works: {forward}"
