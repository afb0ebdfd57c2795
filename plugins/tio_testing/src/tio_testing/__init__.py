"""tio-testing: the tio backend contract as a pytest suite, for anyone who writes a backend.

    pytest --tio-contract NAME[:key=value,...]

runs every contract test on an installed backend. A backend author describes
what the suite cannot know in a ContractHarness (tio_testing.harness) and
registers it with the ``tio_register_contract_harness`` hook; the rules the
suite checks are in tio_testing.rules. The names below load lazily, so the
pytest plugin costs nothing in runs that do not use it.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ContractHarness": "tio_testing.harness",
    "BackendUnderTest": "tio_testing.harness",
    "HarnessError": "tio_testing.harness",
    "resolve_spec": "tio_testing.harness",
    "ContractSuite": "tio_testing.suite",
    "ContractViolation": "tio_testing.rules",
    "Rule": "tio_testing.rules",
    "RULES": "tio_testing.rules",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tio_testing' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
