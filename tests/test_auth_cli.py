"""`python -m monitoring users ...` and the global `--as USER` of CLI writes: the first admin
by bootstrap, passwords without echo or from stdin, roles checked like a sign-in; bad input
is one line and exit 2, and no password reaches the output."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from monitoring.auth import audit
from monitoring.auth.store import open_auth_db
from monitoring.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
PW = "a long enough password"


@pytest.fixture
def url(tmp_path, monkeypatch):
    u = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    monkeypatch.setenv("MONITORING_DB_URL", u)
    monkeypatch.delenv("MODELWATCH_PASSWORD", raising=False)
    monkeypatch.delenv("MODELWATCH_USER", raising=False)
    return u


def run(capsys, monkeypatch, *argv, stdin: str | None = None, mode: str = "password",
        password: str | None = None):
    monkeypatch.setenv("MODELWATCH_AUTH_MODE", mode)
    if password is None:
        monkeypatch.delenv("MODELWATCH_PASSWORD", raising=False)
    else:
        monkeypatch.setenv("MODELWATCH_PASSWORD", password)
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin or ""))
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert PW not in out + err
    return code, out, err


def _team(capsys, monkeypatch):
    assert run(capsys, monkeypatch, "users", "add", "root", "--role", "admin", "--password-stdin",
               stdin=f"{PW}\n")[0] == 0
    for name, role in (("ana", "reviewer"), ("lea", "lead")):
        assert run(capsys, monkeypatch, "--as", "root", "users", "add", name, "--role", role,
                   "--password-stdin", stdin=f"{PW}\n", password=PW)[0] == 0


def test_users_add_set_role_disable_list(capsys, monkeypatch, url):
    code, out, _ = run(capsys, monkeypatch, "users", "add", "root", "--role", "admin", "--password-stdin",
                       stdin=f"{PW}\n")
    assert (code, out.strip()) == (0, "added root (admin) as the first admin")
    _, out, _ = run(capsys, monkeypatch, "--as", "root", "users", "add", "ana", "--role", "reviewer",
                    "--email", "ana@example.org", "--no-password", password=PW)
    assert out.strip() == "added ana (reviewer)"
    assert run(capsys, monkeypatch, "--as", "root", "users", "set-role", "ana", "lead", password=PW)[1] \
        == "ana is now lead\n"
    assert run(capsys, monkeypatch, "--as", "root", "users", "disable", "ana", password=PW)[1] == "ana disabled\n"
    code, out, _ = run(capsys, monkeypatch, "users", "list", "--format", "json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert (rows["ana"]["role"], rows["ana"]["disabled"], rows["ana"]["has_password"]) == ("lead", True, False)
    assert "password_hash" not in out and "argon2" not in out
    table = run(capsys, monkeypatch, "users", "list")[1]
    assert "ana" in table and "disabled" in table and "ana@example.org" in table
    e = open_auth_db(url)
    trail = audit.query(e, action="users").reverse()
    e.dispose()
    assert list(zip(trail["actor"], trail["action"], trail["via"], strict=True)) == [
        (trail["actor"][0], "users.add", "cli"), ("root", "users.add", "cli"),
        ("root", "users.set_role", "cli"), ("root", "users.disable", "cli")]
    assert trail["actor"][0].endswith("(shell)")


def test_a_password_is_asked_without_echo_on_a_terminal(capsys, monkeypatch, url):
    import getpass

    asked = []
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": asked.append(prompt) or PW)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setenv("MODELWATCH_AUTH_MODE", "password")
    assert main(["users", "add", "root", "--role", "admin"]) == 0
    assert asked == ["Password: ", "Again: "]


@pytest.mark.parametrize("argv, stdin, password, match", [
    (["--as", "root", "users", "add", "x", "--role", "viewer", "--password-stdin"], "short\n", PW, "at least 12 characters"),
    (["--as", "root", "users", "add", "x", "--role", "viewer"], "", PW, "no terminal to ask for a password"),
    (["users", "add", "x", "--role", "viewer", "--no-password"], "", None, "name yourself with --as"),
    (["--as", "ana", "users", "add", "x", "--role", "viewer", "--no-password"], "", PW, "may not manage users"),
    (["--as", "root", "users", "add", "x", "--role", "viewer", "--no-password"], "", "wrong one!!", "wrong name or password"),
    (["--as", "root", "users", "set-role", "nobody", "lead"], "", PW, "no user 'nobody'"),
    (["--as", "root", "users", "set-role", "root", "viewer"], "", PW, "last admin"),
    (["--as", "root", "users", "add", "ana", "--role", "viewer", "--no-password"], "", PW, "already"),
    (["--as", "ana", "queue", "close", "1"], "", PW, "needs the lead role"),
    (["--as", "ana", "queue", "export", "1", "--format", "csv", "--out", "/tmp/x.csv"], "", PW, "needs the lead role"),
    (["--as", "ana", "alerts", "ack", "1"], "", PW, "needs the lead role"),
    (["queue", "close", "1"], "", None, "name yourself with --as"),
])
def test_refusals_are_one_line_and_exit_2(capsys, monkeypatch, url, argv, stdin, password, match):
    _team(capsys, monkeypatch)
    code, out, err = run(capsys, monkeypatch, *argv, stdin=stdin, password=password)
    assert code == 2 and err.startswith("error: ") and match in err and err.count("\n") == 1, err


def test_cli_writes_act_as_the_named_user(capsys, monkeypatch, url, generated_logs, tmp_path):
    _team(capsys, monkeypatch)
    code, out, err = run(capsys, monkeypatch, "--as", "lea", "queue", "create", "--logs", generated_logs,
                         "--size", "4", "--seed", "3", password=PW)
    assert code == 0, err
    q = int(out.strip())
    assert run(capsys, monkeypatch, "--as", "lea", "queue", "export", q, "--format", "csv",
               "--out", tmp_path / "l.csv", password=PW)[0] == 0
    assert run(capsys, monkeypatch, "--as", "lea", "queue", "close", q, password=PW)[0] == 0
    # a lockout applies to --as as it does to the sign-in form
    for _ in range(5):
        assert run(capsys, monkeypatch, "--as", "lea", "queue", "close", q, "--reopen", password="nope nope nope")[0] == 2
    code, _, err = run(capsys, monkeypatch, "--as", "lea", "queue", "close", q, "--reopen", password=PW)
    assert code == 2 and "locked" in err
    e = open_auth_db(url)
    trail = audit.query(e, actor="lea", outcome="ok").reverse()
    e.dispose()
    writes = [(a, v) for a, v in zip(trail["action"], trail["via"], strict=True) if not a.startswith("auth")]
    assert writes == [("queue.create", "cli"), ("queue.export", "cli"), ("queue.close", "cli")]


def test_oidc_mode_cli_takes_the_role_from_the_users_table(capsys, monkeypatch, url, generated_logs):
    _team(capsys, monkeypatch)
    code, out, err = run(capsys, monkeypatch, "--as", "ana", "queue", "create", "--logs", generated_logs,
                         "--size", "2", mode="oidc")
    assert code == 2 and "needs the lead role" in err
    assert run(capsys, monkeypatch, "--as", "lea", "queue", "create", "--logs", generated_logs,
               "--size", "2", mode="oidc")[0] == 0
    assert run(capsys, monkeypatch, "--as", "nobody", "queue", "close", "1", mode="oidc")[2].startswith(
        "error: --as nobody: no enabled user")


def test_none_mode_needs_no_user(capsys, monkeypatch, url, generated_logs):
    code, out, err = run(capsys, monkeypatch, "queue", "create", "--logs", generated_logs, "--size", "2",
                         mode="none")
    assert code == 0, err
    code, _, _ = run(capsys, monkeypatch, "--as", "lea", "queue", "close", out.strip(), mode="none")
    e = open_auth_db(url)
    assert audit.query(e, action="queue.close")["actor"].to_list() == ["lea"]
    e.dispose()


def test_help_lists_the_users_command_and_as():
    r = subprocess.run([sys.executable, "-m", "monitoring", "--help"], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert "users" in r.stdout and "--as USER" in r.stdout
