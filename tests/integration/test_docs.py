"""Every command and code block of README.md and docs/ runs, so the docs cannot drift.

A fenced block's language says how it runs:

- ``python``: a complete program, run by the checkout's interpreter in an empty
  folder with no ``ADS_*`` variable set;
- ``bash``: the commands, run by bash in an empty folder, with the checkout's
  ``.venv/bin`` first on PATH (``ads-infra`` is the checkout's) and ``make``
  aimed at the checkout;
- ``console``: ``$ command`` lines, each followed by the first line of output
  it must print;
- ``ini`` / ``yaml`` / ``toml``: parsed;
- no language: a diagram or sample output, not run.

An HTML comment right above a block can change that: ``<!-- docs-test:
instead COMMANDS -->`` runs COMMANDS (bash) in place of a block that cannot run
here as written (it installs from PyPI, or runs for minutes: the comment names
its runnable equivalent), and ``<!-- docs-test: covered-by TEST ... -->`` names the
tests that run it (files, folders or globs, as a pytest command line names them).
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent

_BLOCK = re.compile(
    r"(?:<!--\s*docs-test:\s*(?P<directive>[\w-]+)\s*(?P<argument>.*?)\s*-->\s*\n)?"
    r"^```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^```",
    re.S | re.M,
)


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    lang: str
    body: str
    directive: str | None
    argument: str

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def _blocks() -> list[Block]:
    found = []
    for path in DOCS:
        text = path.read_text()
        for match in _BLOCK.finditer(text):
            line = text.count("\n", 0, match.start("lang")) + 1
            found.append(
                Block(
                    path, line, match["lang"], match["body"], match["directive"],
                    match["argument"] or "",
                )
            )  # fmt: skip
    return found


BLOCKS = [b for b in _blocks() if b.lang or b.directive]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ADS_", "PYTEST_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["ADS_REQUIRE_SERVICES"] = os.environ.get("ADS_REQUIRE_SERVICES", "")
    return env


def _bash(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # `make` means this checkout's Makefile; `.venv/bin/x` its virtualenv.
    script = re.sub(r"(^|\s)make ", rf"\1make --no-print-directory -C {REPO} ", script)
    script = script.replace(".venv/bin/", f"{BIN}/")
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _ok(done: subprocess.CompletedProcess[str], block: Block) -> None:
    assert done.returncode == 0, (
        f"{block.name} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    )


def test_the_docs_hold_blocks_to_run() -> None:
    assert any(b.lang == "python" for b in BLOCKS) and any(b.lang == "bash" for b in BLOCKS)


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.name)
def test_block_runs(block: Block, tmp_path: Path) -> None:
    if block.directive == "covered-by":
        targets = block.argument.split()
        assert targets, f"{block.name}: covered-by names no test"
        for target in targets:
            tests, _, name = target.partition("::")
            files = list(REPO.glob(tests))
            assert files, f"{block.name}: no test file {tests}"
            if name:  # test_x or Class::test_x: the last part is a function
                function = f"def {name.split('::')[-1].split('[')[0]}("
                assert any(function in f.read_text() for f in files if f.is_file()), (
                    f"{block.name}: no test {target}"
                )
        return
    if block.directive == "instead":
        _ok(_bash(block.argument, tmp_path), block)
        return
    assert block.directive is None, f"{block.name}: unknown docs-test directive"
    if block.lang == "python":
        done = subprocess.run(
            [sys.executable, "-c", block.body],
            cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        _ok(done, block)
    elif block.lang == "bash":
        _ok(_bash(block.body, tmp_path), block)
    elif block.lang == "console":
        lines = block.body.strip().splitlines()
        commands = [(i, line[2:]) for i, line in enumerate(lines) if line.startswith("$ ")]
        assert commands, f"{block.name}: a console block holds '$ command' lines"
        for index, command in commands:
            expected = lines[index + 1] if index + 1 < len(lines) else ""
            done = _bash(command, tmp_path)
            first = (done.stdout + done.stderr).strip().splitlines()[:1]
            assert first == [expected], f"{block.name}: `{shlex.quote(command)}` printed {first}"
    elif block.lang == "ini":
        configparser.ConfigParser().read_string(block.body)
    elif block.lang == "yaml":
        yaml.safe_load(block.body)
    elif block.lang == "toml":
        tomllib.loads(block.body)
    else:
        pytest.fail(f"{block.name}: no rule runs a {block.lang!r} block")
