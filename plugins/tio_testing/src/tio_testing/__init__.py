"""tio-testing: the tio backend contract as a pytest suite, for anyone who writes a backend.

    pytest --tio-contract NAME[:key=value,...]

runs every contract test on an installed backend. A backend author describes
what the suite cannot know in a ContractHarness (tio_testing.harness) and
registers it with the ``tio_register_contract_harness`` hook; the rules the
suite checks are in tio_testing.rules. The names below load lazily, so the
pytest plugin costs nothing in runs that do not use it.
"""

from tio_core.plugin.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "tio_testing.harness": ("ContractHarness", "BackendUnderTest", "HarnessError", "resolve_spec"),
        "tio_testing.suite": ("ContractSuite",),
        "tio_testing.rules": ("ContractViolation", "Rule", "RULES"),
    },
)
