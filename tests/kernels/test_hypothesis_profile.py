"""The CI hypothesis profile (tests/conftest.py): derandomized, so a CI run is reproducible."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = "import tests.conftest\nfrom hypothesis import settings\ns = settings()\nprint(s.derandomize, s.max_examples)\n"


def active_settings(**env_changes):
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "HYPOTHESIS_PROFILE")}
    env.update(env_changes)
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.mark.parametrize("env", [{"CI": "true"}, {"HYPOTHESIS_PROFILE": "ci"}], ids=["CI=true", "HYPOTHESIS_PROFILE"])
def test_ci_runs_are_derandomized(env):
    assert active_settings(**env) == ["True", "100"], "in CI every hypothesis test runs the same fixed examples"


def test_local_runs_stay_random_unless_asked():
    assert active_settings()[0] == "False"
    assert active_settings(CI="true", HYPOTHESIS_PROFILE="default")[0] == "False"
