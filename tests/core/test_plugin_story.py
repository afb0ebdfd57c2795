"""The plugin example in docs/plugins.md, installed for real and checked by the shipped conformance suite.

A fresh virtual environment gets non-editable installs (wheels built here, no
network) of tio-core, tio-testing and the documented example plugin; there
the example is listed by `tio backends`, opened by name, and passes
``pytest --tio-contract example``. Planting a contract bug in the example makes
the suite fail with a message naming the broken rule.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "plugins.md"
FILE_BLOCK = re.compile(r"^`(?P<path>[\w/.]+)`\n```\w+\n(?P<body>.*?)^```", re.M | re.S)
CONSOLE_BLOCK = re.compile(r"^```console\n\$ (?P<command>[^\n]+)\n(?P<output>.*?)^```", re.M | re.S)
DOC_FILES = {"pyproject.toml", "tio_example/plugin.py", "tio_example/backend.py", "tio_example/contract_harness.py"}
# Linked from the test environment into the fresh one: third-party packages only. Hypothesis is
# left out: its pytest plugin costs seconds per run and the suite does not use it.
NOT_LINKED = re.compile(r"^(tio|__editable__|_?hypothesis|pip\b|pip-|__pycache__)|\.pth$")

# Bugs a plugin author could make, each with the rule the suite must name.
PLANTED_BUGS = {
    "views valid after close": (
        "            self._closed = True\n            self._end_borrow()\n",
        "            self._closed = True\n",
        "contract rule 'close-ends-borrow' broken",
    ),
    "write_gso accepts 251 fragments": (
        "plan_gso_write(ip_hdr, transport_hdr, payloads, proto)",
        "plan_gso_write(ip_hdr, transport_hdr, payloads[:250], proto)",  # caps instead of refusing
        "contract rule 'write-gso-geometry' broken",
    ),
}


def doc_files() -> dict[str, str]:
    return {m["path"]: m["body"] for m in FILE_BLOCK.finditer(DOC.read_text())}


def doc_console(command: str) -> str:
    """The output docs/plugins.md shows for ``command`` (its first console block running it)."""
    for block in CONSOLE_BLOCK.finditer(DOC.read_text()):
        if block["command"] == command:
            return block["output"]
    raise AssertionError(f"docs/plugins.md shows no `$ {command}`")


def test_doc_example_has_every_file():
    assert set(doc_files()) == DOC_FILES


def test_every_planted_bug_applies_to_the_documented_backend():
    backend = doc_files()["tio_example/backend.py"]
    for name, (correct, _buggy, _rule) in PLANTED_BUGS.items():
        assert backend.count(correct) == 1, f"planted bug {name!r}: the documented code changed"


def write_example(project: Path, plant: str | None = None) -> Path:
    for rel, body in doc_files().items():
        if plant is not None and rel == "tio_example/backend.py":
            correct, buggy, _rule = PLANTED_BUGS[plant]
            body = body.replace(correct, buggy)
        target = project / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body)
    (project / "tio_example" / "__init__.py").write_text("")
    return project


def copy_distribution(source: Path, target: Path, parts: list[str]) -> Path:
    """A clean copy of a distribution's sources, so building leaves nothing in the work tree."""
    for part in parts:
        origin = source / part
        if origin.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.so", "*.egg-info", "build")
            shutil.copytree(origin, target / part, ignore=ignore)
        else:
            shutil.copy2(origin, target / part)
    return target


class FreshEnv:
    """A virtual environment holding tio-core, tio-testing and what is installed later, all from wheels."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.wheels = root / "wheels"
        self.venv = root / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(self.venv)], check=True)
        self.python = self.venv / "bin" / "python"
        self._link_third_party()
        core = copy_distribution(ROOT, root / "src-core", ["src", "setup.py", "pyproject.toml", "README.md"])
        testing = copy_distribution(
            ROOT / "plugins" / "tio_testing", root / "src-testing", ["src", "pyproject.toml", "README.md"]
        )
        self.install(core, testing)

    def _link_third_party(self) -> None:
        deps = self.root / "deps"
        deps.mkdir()
        for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
            if not NOT_LINKED.search(entry.name):
                (deps / entry.name).symlink_to(entry)
        site = subprocess.run(
            [str(self.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        Path(site, "third_party.pth").write_text(f"{deps}\n")

    def install(self, *projects: Path) -> None:
        """Build wheels of ``projects`` (no build isolation, no index) and install them, replacing older ones."""
        pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
        subprocess.run(
            [
                *pip,
                "wheel",
                "--no-deps",
                "--no-build-isolation",
                "--no-index",
                "-w",
                str(self.wheels),
                *map(str, projects),
            ],
            check=True,
            capture_output=True,
        )
        names = {p.name for p in projects}
        wheels = [w for w in self.wheels.iterdir() if any(w.name.startswith(self._dist(n)) for n in names)]
        subprocess.run(
            [
                *pip,
                "--python",
                str(self.python),
                "install",
                "--no-index",
                "--no-deps",
                "--force-reinstall",
                *map(str, wheels),
            ],
            check=True,
            capture_output=True,
        )

    @staticmethod
    def _dist(project_dir: str) -> str:
        return {"src-core": "tio_core-", "src-testing": "tio_testing-"}.get(project_dir, "tio_example-")

    def run(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TIO_", "PYTHON", "PYTEST"))}
        return subprocess.run([str(self.python), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def fresh_env(tmp_path_factory: pytest.TempPathFactory) -> FreshEnv:
    root = tmp_path_factory.mktemp("plugin-story")
    env = FreshEnv(root)
    env.install(write_example(root / "tio-example"))
    return env


@pytest.mark.slow
def test_installed_example_is_listed_and_opened_by_name(fresh_env, tmp_path):
    listing = fresh_env.run("-m", "tio_core.cli", "backends", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout == doc_console("tio backends"), "docs/plugins.md shows another `tio backends` output"
    config = tmp_path / "tio.toml"
    config.write_text('[tio]\nbackend = "example"\n[tio.options]\nqueues = 2\n')
    use = (
        "import sys, tio_core\n"
        "with tio_core.open_from_config(sys.argv[1]) as qs:\n"
        "    q = qs.queues()[1]\n"
        "    q.write(b'\\x45abc')\n"
        "    print(len(qs.queues()), [bytes(p.data) for p in q.read()])\n"
    )
    out = fresh_env.run("-c", use, str(config), cwd=tmp_path)
    assert out.stdout.strip() == "2 [b'Eabc']", out.stderr


@pytest.mark.slow
def test_installed_example_passes_the_conformance_suite(fresh_env, tmp_path):
    result = fresh_env.run("-m", "pytest", "--tio-contract", "example", "-p", "no:cacheprovider", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert re.match(r"^\d+ passed(, \d+ skipped)? in ", summary), summary
    assert int(summary.split()[0]) >= 20, f"too few contract tests ran: {summary}"


@pytest.mark.slow
@pytest.mark.parametrize("plant", sorted(PLANTED_BUGS))
def test_a_planted_contract_bug_fails_naming_the_rule(fresh_env, tmp_path, plant):
    try:
        fresh_env.install(write_example(tmp_path / "tio-example", plant))
        result = fresh_env.run("-m", "pytest", "--tio-contract", "example", "-p", "no:cacheprovider", cwd=tmp_path)
    finally:
        fresh_env.install(write_example(tmp_path / "tio-example-fixed"))
    assert result.returncode == 1, result.stdout[-3000:]
    rule = PLANTED_BUGS[plant][2]
    assert rule in result.stdout, f"the failure does not name the rule ({rule}):\n{result.stdout[-3000:]}"
