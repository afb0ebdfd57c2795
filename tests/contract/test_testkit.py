"""tio-testing itself: the --tio-contract option, harness registration and the rules' messages."""

from __future__ import annotations

import re
import types
from pathlib import Path

import pytest

from tests.support.plugin_dists import backend_plugin
from tio_core import BackendDef, ConfigError, TioError, hookimpl
from tio_core.plugin.registry import BackendRegistry
from tio_testing import RULES, ContractHarness, HarnessError, resolve_spec
from tio_testing import suite as suite_module

pytest_plugins = ["pytester"]
QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")


def test_the_command_line_runs_every_contract_test_on_each_spec(pytester):
    result = pytester.runpytest_subprocess(
        *QUIET, "--tio-contract", "fake", "--tio-contract", "fake:end_of_stream=true", "-v", timeout=120
    )
    result.assert_outcomes(passed=40)
    result.stdout.fnmatch_lines_random(
        [
            "test_contract.py::TestContract::test_read_past_the_inbound[[]fake[]] PASSED*",
            "test_contract.py::TestContract::test_read_past_the_inbound[[]fake:end_of_stream=true[]] PASSED*",
        ]
    )


def test_a_backend_without_a_harness_gets_the_subset_that_needs_none(pytester, monkeypatch):
    # An installed plugin (a dist-info on PYTHONPATH) whose backend registers no harness.
    backend_plugin(pytester.path, "tio-loop", "tio_loop_plugin", "loop")
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))
    result = pytester.runpytest_subprocess(*QUIET, "--tio-contract", "loop", "-rs", timeout=120)
    result.assert_outcomes(passed=5, skipped=15)  # geometry: the loop has no write_gso
    result.stdout.fnmatch_lines(["*backend 'loop' registers no contract harness, and this rule needs one*"])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("fak", "*--tio-contract fak: no backend named 'fak'. Did you mean 'fake'?*"),
        ("fake:colour=red", "*--tio-contract fake:colour=red: backend 'fake' has no option 'colour'*"),
        ("pcap:path=in.pcap", "*option 'path' is set by PcapHarness itself*leave it out of the spec*"),
    ],
)
def test_a_wrong_spec_is_a_usage_error(pytester, spec, message):
    result = pytester.runpytest_inprocess(*QUIET, "--tio-contract", spec)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


class LoopHarness(ContractHarness):
    def open(self, inbound):
        raise NotImplementedError

    def outbound(self, qs, min_count=0):
        return []


def registry_with(harnesses: object) -> BackendRegistry:
    """A registry with the built-in plugin, a backend 'loop' and a plugin whose harness hook returns ``harnesses``."""
    registry = BackendRegistry(autoload=False)
    backend = types.SimpleNamespace(
        tio_register_backends=hookimpl(lambda: [BackendDef("loop", "test loop", lambda: None)])
    )
    registry.register(backend, "loop-backend")
    harness = types.SimpleNamespace(tio_register_contract_harness=hookimpl(lambda: harnesses))
    registry.register(harness, "loop-harness")
    return registry


def test_a_registered_harness_is_found_by_class_or_by_name():
    assert resolve_spec("loop", registry_with({"loop": LoopHarness})).harness_class is LoopHarness
    named = resolve_spec("loop", registry_with({"loop": f"{__name__}:LoopHarness"}))
    assert named.harness_class is LoopHarness and named.harness_origin == "loop-harness"
    assert resolve_spec("loop", registry_with({})).harness_class is None


@pytest.mark.parametrize(
    ("harnesses", "message"),
    [
        (["loop"], "loop-harness: tio_register_contract_harness must return a dict"),
        ({"loop": dict}, "is <class 'dict'>, not a subclass of tio_testing.ContractHarness"),
        ({"loop": "no_such_module:Harness"}, "cannot load 'no_such_module:Harness'"),
    ],
)
def test_a_wrongly_registered_harness_says_what_is_wrong(harnesses, message):
    with pytest.raises(TioError, match=re.escape(message)):
        resolve_spec("loop", registry_with(harnesses))


def test_two_harnesses_for_one_backend_are_refused():
    registry = registry_with({"loop": LoopHarness})
    registry.register(
        types.SimpleNamespace(tio_register_contract_harness=hookimpl(lambda: {"loop": LoopHarness})), "second"
    )
    with pytest.raises(HarnessError, match="two contract harnesses for backend 'loop'"):
        resolve_spec("loop", registry)


def test_options_the_harness_owns_are_refused():
    class Owning(LoopHarness):
        owned_options = ("depth",)

    with pytest.raises(ConfigError, match="option 'depth' is set by Owning itself"):
        resolve_spec("loop:depth=3", registry_with({"loop": Owning}))


def test_every_rule_is_checked_by_the_suite():
    source = Path(suite_module.__file__).read_text()
    unused = [rule.name for rule in RULES if f"rules.{rule.name.upper().replace('-', '_')}" not in source]
    assert not unused, f"rules no test checks: {unused}"
