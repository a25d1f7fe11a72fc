"""Every ``aloe-ros`` command in the README's and docs' bash blocks parses with today's CLI.

Docs must work when pasted. Each bash block is reduced to its variable assignments and its
``aloe-ros`` invocations (nothing else runs: no pip, make or colcon); bash itself then expands
the variables (``$COMMON``, ``${COMMON/--rounds 3/--rounds 5}``, ...) with ``aloe-ros`` bound
to a function that records its argv, and each argv goes through the real ``build_parser()``.
A renamed flag, a typo or a substitution bash rejects fails here, naming file and line.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from aloe_ros.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# The executable as docs spell it: on PATH (ROS installs) or in the project's venv.
EXECUTABLE = re.compile(r"^(?:\S*/)?aloe-ros$")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
# The CLI as a module under a launcher: `torchrun ... -m aloe_ros.cli`, `python -m aloe_ros.cli`.
MODULE_CALL = re.compile(r"^(?:\S*/)?(?:torchrun|python3?)\s(?:.*\s)?-m aloe_ros\.cli(?=\s|$)")
SEPARATORS = (";", "&&", "|")


RECORDER = "__aloe_ros"


@dataclass
class DocCommand:
    file: str
    line: int
    text: str     # as the doc writes it
    script: str   # as the test's bash runs it: see as_recorded

    @property
    def is_call(self) -> bool:
        return self.script != self.text


def doc_command(file: str, line: int, text: str) -> DocCommand:
    script = as_recorded(text)
    assert script is not None, f"{file}:{line}: not a kept statement: {text}"
    return DocCommand(file, line, text, script)


def bash_blocks(path: Path) -> list[tuple[int, list[str]]]:
    """(first line number, lines) of each fenced bash block."""
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] | None = None
    start = 0
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fence = line.strip()
        if current is None and fence in ("```bash", "```sh"):
            current, start = [], number + 1
        elif current is not None and fence.startswith("```"):
            blocks.append((start, current))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def logical_lines(start: int, lines: list[str]) -> list[tuple[int, str]]:
    """Join backslash continuations and quotes left open across lines (COMMON="... \\n ...")."""
    joined: list[tuple[int, str]] = []
    buffer, first = "", start
    for offset, line in enumerate(lines):
        if not buffer:
            first = start + offset
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        try:
            shlex.split(buffer, comments=True)
        except ValueError:  # an open quote: the statement goes on
            buffer += "\n"
            continue
        joined.append((first, buffer))
        buffer = ""
    assert not buffer, f"unterminated statement at line {first}"
    return joined


def as_recorded(text: str) -> str | None:
    """An assignment as written; an aloe-ros call (optional VAR=value prefixes) with the
    recorder in place of the executable, or of launcher and module; None for anything else."""
    words = shlex.split(text, comments=True)
    if not words:
        return None
    if "$(" in text or "`" in text:
        return None   # command substitution would run something
    prefix = 0
    while prefix < len(words) and ASSIGNMENT.match(words[prefix]):
        prefix += 1
    if any(sep in text for sep in SEPARATORS):
        return None
    if prefix == len(words):
        return text
    if MODULE_CALL.match(text):
        return MODULE_CALL.sub(RECORDER, text, count=1)
    if EXECUTABLE.match(words[prefix]):
        return text.replace(words[prefix], RECORDER, 1)
    return None


def doc_commands() -> list[DocCommand]:
    commands: list[DocCommand] = []
    for path in DOCS:
        for start, lines in bash_blocks(path):
            for number, text in logical_lines(start, lines):
                if as_recorded(text) is not None:
                    commands.append(doc_command(path.relative_to(ROOT).as_posix(), number,
                                                text))
    return commands


def expand(commands: list[DocCommand], tmp_path: Path) -> list[tuple[DocCommand, list[str]]]:
    """Run one file's statements in bash; aloe-ros calls print their argv, NUL-separated."""
    argvs: list[tuple[DocCommand, list[str]]] = []
    by_file: dict[str, list[DocCommand]] = {}
    for command in commands:
        by_file.setdefault(command.file, []).append(command)
    for file, file_commands in by_file.items():
        script = ["set -u", RECORDER + "() { printf '%s\\0' \"$@\"; printf '\\1'; }",
                  *(command.script for command in file_commands)]
        calls = [command for command in file_commands if command.is_call]
        result = subprocess.run(["bash", "-c", "\n".join(script)], capture_output=True,
                                text=True, cwd=tmp_path, timeout=60)
        outputs = result.stdout.split("\1")[:-1]   # one record per call, each argv + NUL
        # bash skips a command with a bad substitution and goes on: stderr tells.
        assert result.returncode == 0 and not result.stderr and len(outputs) == len(calls), (
            f"{file}: bash could not expand its commands ({len(outputs)} of {len(calls)} "
            f"ran):\n{result.stderr}")
        for command, output in zip(calls, outputs):
            argvs.append((command, output.split("\0")[:-1]))
    return argvs


COMMANDS = doc_commands()


def test_docs_have_commands() -> None:
    # Guards the extraction: an empty list would make the parse test pass vacuously.
    assert len(COMMANDS) >= 50
    assert {c.file for c in COMMANDS} >= {"README.md", "docs/learning_bench.md"}
    assert any(c.text.startswith("torchrun") for c in COMMANDS)


def without_abbreviations(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The parser and every subcommand's, refusing prefixes of long flags.

    argparse accepts a unique prefix (``--batch`` for ``--batch-size``); a doc that relies on
    one breaks once another flag shares the prefix, so docs spell flags in full.
    """
    parser.allow_abbrev = False
    for action in parser._actions:   # no public API lists subparsers
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                without_abbreviations(child)
    return parser


def test_every_doc_command_parses(tmp_path: Path) -> None:
    parser = without_abbreviations(build_parser())
    failures = []
    for command, argv in expand(COMMANDS, tmp_path):
        try:
            parser.parse_args(argv)
        except SystemExit:
            failures.append(f"{command.file}:{command.line}: aloe-ros {shlex.join(argv)}")
    assert not failures, "doc commands the CLI rejects:\n" + "\n".join(failures)


def test_a_bad_flag_is_caught(tmp_path: Path) -> None:
    bad = doc_command("x.md", 1, ".venv/bin/aloe-ros bench learning --no-such-flag --out d")
    ((command, argv),) = expand([bad], tmp_path)
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)


def test_an_abbreviated_flag_is_caught(tmp_path: Path) -> None:
    short = doc_command("x.md", 1, "aloe-ros bench learning --task pack_phone --method aloe "
                                   "--rounds 1 --episodes-per-round 1 --batch 8 --out d")
    ((command, argv),) = expand([short], tmp_path)
    assert build_parser().parse_args(argv).batch_size == 8        # argparse alone takes it
    with pytest.raises(SystemExit):
        without_abbreviations(build_parser()).parse_args(argv)


def test_a_module_call_under_a_launcher_is_checked(tmp_path: Path) -> None:
    call = doc_command("x.md", 1, "torchrun --nproc_per_node 2 -m aloe_ros.cli train d --out o")
    assert expand([call], tmp_path)[0][1] == ["train", "d", "--out", "o"]
    assert as_recorded("python -m pytest test -q") is None


def test_a_bash_substitution_error_is_caught(tmp_path: Path) -> None:
    bad = [doc_command("x.md", 1, 'COMMON="--rounds 3"'),
           doc_command("x.md", 2, "aloe-ros bench learning ${{COMMON/3/5}} --out d")]
    with pytest.raises(AssertionError, match="could not expand"):
        expand(bad, tmp_path)


def test_continuations_and_open_quotes_join() -> None:
    lines = ['C="--a 1', '  --b 2"', "aloe-ros x $C \\", "  --c 3  # note"]
    assert logical_lines(10, lines) == [(10, 'C="--a 1\n  --b 2"'),
                                        (12, "aloe-ros x $C    --c 3  # note")]
