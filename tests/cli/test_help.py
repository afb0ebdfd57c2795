"""Help that answers questions (issue 15 item 5): an example per command, choices listed, README in step."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.cli.helpers import tio
from tio_core.cli.parsing import build_parser

README = Path(__file__).resolve().parents[2] / "README.md"
COMMANDS = ["forward", "replay", "record", "info", "backends", "bench"]


def help_text(*argv: str) -> str:
    result = tio(*argv, "--help")
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_help_has_one_example(command):
    text = help_text(command)
    examples = [line.strip() for line in text.splitlines() if line.strip().startswith(f"tio {command}")]
    assert "example:" in text and len(examples) == 1, f"tio {command} --help has one example line"


def test_help_lists_the_choices():
    assert re.search(r"installed backends: .*fake.*linux.*pcap", help_text("forward"))
    assert re.search(r"benchmarks \(--only\): .*kernels", help_text("bench"))
    assert "exits 1 when a plugin failed" in " ".join(help_text("backends").split()).lower()


def test_top_level_help_states_the_exit_codes():
    text = " ".join(tio("--help").stdout.split())
    assert "exit codes: 0 ok" in text and "2 usage or configuration error" in text


def readme_commands() -> dict[str, str]:
    """command -> its row of the README's command table."""
    text = README.read_text()
    section = text.split("## The `tio` command", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\| `tio (\w+)", line)
        if match:
            rows[match[1]] = line
    return rows


def test_readme_command_table_matches_help():
    rows = readme_commands()
    assert sorted(rows) == sorted(COMMANDS), "the README's table has one row per command"
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    for command, row in rows.items():
        documented = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-[a-z])\b", row))
        declared = {flag for action in subparsers[command]._actions for flag in action.option_strings} - {
            "-h",
            "--help",
        }
        assert documented == declared, f"README row of tio {command} lists exactly its --help flags"
