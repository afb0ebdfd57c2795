"""The plugin example in docs/plugins.md, installed for real with pip and used by name."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
FILE_BLOCK = re.compile(r"^`(?P<path>[\w/.]+)`\n```\w+\n(?P<body>.*?)^```", re.M | re.S)


def doc_files() -> dict[str, str]:
    return {m["path"]: m["body"] for m in FILE_BLOCK.finditer(DOC.read_text())}


def test_doc_example_has_every_file():
    assert set(doc_files()) == {"pyproject.toml", "tio_echo/plugin.py", "tio_echo/backend.py"}


@pytest.mark.slow
def test_doc_plugin_installs_and_works_by_name(tmp_path):
    project = tmp_path / "tio-echo"
    for rel, body in doc_files().items():
        target = project / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body)
    (project / "tio_echo" / "__init__.py").write_text("")
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(project),
        ],
        check=True,
    )
    env = dict(os.environ, PYTHONPATH=str(site))
    env.pop("TIO_PLUGINS", None)
    listing = subprocess.run(
        [sys.executable, "-m", "tio_core.cli", "backends"], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert re.search(r"^echo\s+reads back what was written\s+tio-echo\s+1\.0\.0$", listing, re.M)
    config = tmp_path / "tio.toml"
    config.write_text('[tio]\nbackend = "echo"\n[tio.options]\nqueues = 2\n')
    use = (
        "import sys, tio_core\n"
        "with tio_core.open_from_config(sys.argv[1]) as qs:\n"
        "    q = qs.queues()[1]\n"
        "    q.write(b'\\x45abc')\n"
        "    print(len(qs.queues()), [bytes(p.data) for p in q.read()])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", use, str(config)], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "2 [b'Eabc']"
