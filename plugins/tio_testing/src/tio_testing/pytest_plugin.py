"""``pytest --tio-contract NAME[:key=value,...]``: the backend contract suite against an installed backend.

Loaded through the ``pytest11`` entry point of tio-testing. With the option
(repeatable, one spec each), the session collects TestContract
(tio_testing.collect.test_contract) once per spec, plus any test paths given explicitly on the
command line. Classes that subclass ContractSuite with ``contract_specs`` run
on those specs instead. Imports nothing heavy until the suite runs.
"""

from __future__ import annotations

import fnmatch
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tio_testing.harness import BackendUnderTest

OPTION = "--tio-contract"
SPEC_ARG = "tio_contract_spec"
COLLECTED_MODULE = "tio_testing.collect.test_contract"
_RESOLVED = pytest.StashKey[dict[str, "BackendUnderTest"]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tio", "tio backend contract (tio-testing)")
    group.addoption(
        OPTION,
        action="append",
        default=[],
        metavar="NAME[:key=value,...]",
        dest="tio_contract",
        help="run the tio backend contract suite on this installed backend, opened with these options "
        "(as tio's --from/--to SPEC); repeat for several",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_RESOLVED] = {}
    for spec in config.getoption("tio_contract"):
        backend_for(config, spec)  # a wrong spec is a usage error before anything runs


def backend_for(config: pytest.Config, spec: str) -> BackendUnderTest:
    """The resolved spec (backend, options, harness), once per run; pytest.UsageError when it is wrong."""
    from tio_core.errors import TioError
    from tio_testing.harness import resolve_spec

    resolved = config.stash.setdefault(_RESOLVED, {})
    if spec not in resolved:
        try:
            resolved[spec] = resolve_spec(spec)
        except TioError as exc:
            raise pytest.UsageError(f"{OPTION} {spec}: {exc}") from None
    return resolved[spec]


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session: pytest.Session) -> bool | None:
    config = session.config
    if not config.getoption("tio_contract"):
        return None
    found = importlib.util.find_spec(COLLECTED_MODULE)
    assert found is not None and found.origin is not None, f"{COLLECTED_MODULE} is part of tio-testing"
    module = Path(found.origin)
    # Collecting the module's folder names tests "test_contract.py::TestContract::..."; the file itself
    # is collected when the project's python_files patterns would skip that name.
    patterns = config.getini("python_files")
    target = module.parent if any(fnmatch.fnmatch(module.name, p) for p in patterns) else module
    explicit = list(config.args) if config.args_source == pytest.Config.ArgsSource.ARGS else []
    session.perform_collect([*explicit, str(target)])
    return True


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if SPEC_ARG not in metafunc.fixturenames:
        return
    specs = tuple(getattr(metafunc.cls, "contract_specs", ()) or metafunc.config.getoption("tio_contract"))
    if specs:
        metafunc.parametrize(SPEC_ARG, specs, ids=list(specs), scope="class")
    else:
        reason = f"no backend to check: give {OPTION} NAME, or contract_specs on the ContractSuite subclass"
        metafunc.parametrize(SPEC_ARG, [pytest.param(None, marks=pytest.mark.skip(reason=reason))], ids=["none"])
