"""monitoring.cli.options: the options every command shares, parsed the same way, and the
fixed-width tables of the listing commands, checked against hand-written lines."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

import pytest

from monitoring.cli.options import (
    Column,
    db_arg,
    format_arg,
    print_rows,
    source_args,
    table_lines,
    time_window,
    window_args,
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    source_args(p)
    window_args(p)
    p.add_argument("--as-of", dest="as_of")
    db_arg(p, "labels")
    format_arg(p)
    return p


D = lambda *a: datetime(*a, tzinfo=UTC)  # noqa: E731

WINDOWS = [
    ([], {"start": None, "end": None}),
    (["--start", "2026-11-01"], {"start": D(2026, 11, 1), "end": None}),
    (["--end", "2026-11-02T06:00"], {"start": None, "end": D(2026, 11, 2, 6)}),
    (["--start", "2026-11-01", "--end", "2026-11-02"], {"start": D(2026, 11, 1), "end": D(2026, 11, 2)}),
    (["--start", "2026-11-01T00:00+01:00"], {"start": D(2026, 10, 31, 23), "end": None}),
]


@pytest.mark.parametrize(("argv", "expected"), WINDOWS)
def test_time_window_parses_what_was_given(argv, expected):
    assert time_window(parser().parse_args(argv)) == expected


def test_time_window_reads_other_names_too():
    args = parser().parse_args(["--as-of", "2026-11-03"])
    assert time_window(args, "start", "as_of") == {"start": None, "as_of": D(2026, 11, 3)}


@pytest.mark.parametrize(("argv", "message"), [
    (["--start", "2026-11-05", "--end", "2026-11-01"], "--end must be after --start"),
    (["--start", "2026-11-05", "--end", "2026-11-05"], "--end must be after --start"),
    (["--start", "last tuesday"], "last tuesday"),
])
def test_bad_windows_are_one_sentence(argv, message):
    with pytest.raises(ValueError, match=message):
        time_window(parser().parse_args(argv))


def test_shared_options_have_their_defaults():
    args = parser().parse_args([])
    assert (args.logs, args.config, args.db, args.format) == (None, None, None, "table")
    with pytest.raises(SystemExit):
        parser().parse_args(["--format", "xml"])


ROWS = [{"name": "ada", "role": "admin", "n": 3}, {"name": "bartholomew", "role": "viewer", "n": 12}]


@pytest.mark.parametrize(("columns", "sep", "expected"), [
    ([Column("name", 12), Column("role", 8), Column("n")], "",
     ["name        role    n", "ada         admin   3", "bartholomew viewer  12"]),
    ([Column("n", 3, ">"), Column("name", 5), Column("role")], "  ",
     ["  n  name   role", "  3  ada    admin", " 12  bartholomew  viewer"]),
    ([Column("who", 4, value=lambda r: r["name"][:3].upper()), Column("twice", value=lambda r: 2 * r["n"])], "",
     ["who twice", "ADA 6", "BAR 24"]),
])
def test_table_lines_match_hand_written_lines(columns, sep, expected):
    assert table_lines(ROWS, columns, sep) == expected


@pytest.mark.parametrize(("rows", "fmt", "expected"), [
    (ROWS, "table", "name  role\nada   admin\nbartholomewviewer\n"),
    ([], "table", "nobody yet\n"),
    (ROWS, "json", json.dumps(ROWS, indent=2) + "\n"),
    ([], "json", "[]\n"),
])
def test_print_rows_prints_json_a_table_or_the_empty_sentence(capsys, rows, fmt, expected):
    print_rows(rows, fmt, [Column("name", 6), Column("role")], empty="nobody yet")
    out = capsys.readouterr().out
    if fmt == "json":
        assert json.loads(out) == json.loads(expected)
    else:
        assert out == expected
