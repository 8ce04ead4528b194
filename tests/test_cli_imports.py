"""The CLI imports only the module of the command being run, and none for the top-level help
(each case in a fresh interpreter, so earlier imports cannot hide one)."""

import json
import subprocess
import sys

import pytest

from monitoring.cli.main import COMMANDS

PROBE = """
import contextlib, io, json, sys
from monitoring.cli.main import COMMANDS, build_parser
argv = json.loads(sys.argv[1])
before = set(sys.modules)   # what the CLI itself needs (e.g. --as from auth.cli)
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        build_parser(argv).parse_args(argv)
    except SystemExit:
        pass
print(json.dumps(sorted({m for _, m, _, _ in COMMANDS.values() if m in set(sys.modules) - before})))
"""


def imported(argv: list[str]) -> list[str]:
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("argv, modules", [
    (["--help"], []),
    ([], []),
    (["no-such-command"], []),
    (["stats", "--help"], ["monitoring.cli.stats"]),
    (["--as", "ann", "rollup", "--help"], ["monitoring.rollup.cli"]),
    (["models", "--help"], ["monitoring.compare.cli"]),
])
def test_only_the_chosen_command_is_imported(argv, modules):
    assert imported(argv) == modules


def test_without_argv_every_command_is_built():
    # build_parser() with no argv builds every subparser with its run function
    import argparse

    from monitoring.cli.main import build_parser
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == set(COMMANDS)
    assert all(callable(p.get_default("run")) for p in sub.choices.values())
