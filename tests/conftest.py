"""Suite-wide pytest set-up: a reproducible hypothesis profile for CI.

With CI=true (as CI services set it), or HYPOTHESIS_PROFILE=ci, every
hypothesis test runs derandomized: the same examples in every run, so a
failure in CI fails again on a developer's machine. HYPOTHESIS_PROFILE may
name any registered profile ("default" is hypothesis' own, random).
Tests that set max_examples themselves keep their count; the rest run
CI_MAX_EXAMPLES examples.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

CI_MAX_EXAMPLES = 100

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=CI_MAX_EXAMPLES,
    deadline=None,  # a loaded CI machine must not turn slowness into failures
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def _profile_name() -> str | None:
    if os.environ.get("HYPOTHESIS_PROFILE"):
        return os.environ["HYPOTHESIS_PROFILE"]
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        return "ci"
    return None


if _profile_name() is not None:
    settings.load_profile(_profile_name())
