"""`python -m monitoring users ...`, and the acting user of every CLI write (`--as USER`).

    python -m monitoring users add lea --role lead                 # asks for a password (no echo)
    printf '%s\\n' "$PW" | python -m monitoring users add bot --role reviewer --password-stdin
    python -m monitoring users set-role lea admin
    python -m monitoring users disable ana
    python -m monitoring users list --format json
    python -m monitoring --as lea queue create --logs sample_logs --size 60

`--as` is checked the same way as a sign-in: in `password` mode the user's password is asked
(no echo) or read from MODELWATCH_PASSWORD, with the same lockout; in `oidc` mode the user
must be in the users table (the shell account vouches for them, as it holds the database
URL anyway); in `none` mode it only names who is recorded. The first admin of an empty
database is added without --as (bootstrap).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..cli.options import Column, print_rows
from .roles import Actor, PermissionDenied
from .settings import ROLES, AuthSettings, configured, secret

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


def add_as_argument(parser: argparse.ArgumentParser) -> None:
    """The global --as option (monitoring/cli/main.py adds it to the top-level parser)."""
    parser.add_argument("--as", dest="as_user", metavar="USER", default=os.environ.get("MODELWATCH_USER"),
                        help="act as this user for writes (checked when [auth] mode is on; "
                             "default MODELWATCH_USER)")


def read_password(args_stdin: bool, prompt: str = "Password: ", confirm: bool = False) -> str:
    """From stdin (one line) for scripts, else from the terminal without echo."""
    if args_stdin:
        line = sys.stdin.readline()
        if not line:
            raise ValueError("--password-stdin: nothing on standard input")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise ValueError("no terminal to ask for a password: pass it on standard input with --password-stdin")
    pw = getpass.getpass(prompt)
    if confirm and getpass.getpass("Again: ") != pw:
        raise ValueError("the two passwords differ; nothing was changed")
    return pw


def cli_actor(engine: Engine, as_user: str | None, settings: AuthSettings | None = None) -> Actor | None:
    """The acting user of a CLI write; None (the local user) in `none` mode without --as."""
    s = settings or configured()
    if not s.enabled:
        return Actor(name=as_user.strip()[:100], role="admin", via="cli") if as_user and as_user.strip() else None
    if not as_user:
        raise PermissionDenied(f"[auth] mode is {s.mode!r}: name yourself with --as USER (or MODELWATCH_USER)")
    if s.mode == "password":
        from .sessions import LoginFailed, login

        password = secret("password")
        if password is None:
            if not sys.stdin.isatty():
                raise PermissionDenied("--as needs the user's password: set MODELWATCH_PASSWORD, "
                                       "or run from a terminal")
            password = getpass.getpass(f"Password for {as_user}: ")
        try:
            return login(engine, as_user, password, settings=s, via="cli", client="cli").actor
        except LoginFailed as exc:
            raise PermissionDenied(f"--as {as_user}: {exc}") from None
    from .users import get_user

    row = get_user(engine, as_user.strip())
    if row is None or row["disabled"]:
        raise PermissionDenied(f"--as {as_user}: no enabled user of that name in the users table")
    return Actor(name=row["name"], role=row["role"], via="cli", authenticated=True)


# -- users -----------------------------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="users_command", required=True,
                           metavar="{add,set-role,disable,enable,passwd,list}")

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--db", help="database URL (default MONITORING_DB_URL, else the SQLite file "
                                     "in the data folder)")
        sp.add_argument("--config", help="path of monitoring.toml (default MONITORING_CONFIG)")

    a = sub.add_parser("add", help="add a user (asks for a password unless --no-password)")
    common(a)
    a.add_argument("name")
    a.add_argument("--role", required=True, choices=ROLES)
    a.add_argument("--email", help="e-mail, to match OIDC sign-ins to this user")
    a.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    a.add_argument("--no-password", action="store_true", help="no password: signs in through OIDC only")
    r = sub.add_parser("set-role", help="change a user's role")
    common(r)
    r.add_argument("name")
    r.add_argument("role", choices=ROLES)
    for name, help_ in (("disable", "stop a user signing in (their sessions end)"),
                        ("enable", "let a disabled or locked user sign in again")):
        d = sub.add_parser(name, help=help_)
        common(d)
        d.add_argument("name")
    pw = sub.add_parser("passwd", help="set a user's password (and unlock them)")
    common(pw)
    pw.add_argument("name")
    pw.add_argument("--password-stdin", action="store_true")
    ls = sub.add_parser("list", help="list users and roles")
    common(ls)
    ls.add_argument("--format", choices=("table", "json"), default="table")


def run(args: argparse.Namespace) -> int:
    from ..config import load_config
    from . import users
    from .settings import from_config
    from .store import open_auth_db

    cfg = load_config(args.config, {"db_url": args.db})
    s = from_config(cfg)
    engine = open_auth_db(cfg.database_url)
    try:
        cmd = args.users_command
        if cmd == "list":
            return _list(args, users.list_users(engine))
        bootstrap = cmd == "add" and not getattr(args, "as_user", None) and not users.has_admin(engine)
        actor = None if bootstrap else cli_actor(engine, getattr(args, "as_user", None), s)
        if cmd == "add":
            password = None if args.no_password else read_password(args.password_stdin, confirm=True)
            row = users.add_user(engine, args.name, args.role, password=password, email=args.email,
                                 actor=actor, settings=s, bootstrap=bootstrap)
            print(f"added {row['name']} ({row['role']})" + (" as the first admin" if bootstrap else ""))
        elif cmd == "set-role":
            row = users.set_role(engine, args.name, args.role, actor=actor, settings=s)
            print(f"{row['name']} is now {row['role']}")
        elif cmd in ("disable", "enable"):
            row = users.disable(engine, args.name, actor=actor, settings=s, enabled=cmd == "enable")
            print(f"{row['name']} {'disabled' if row['disabled'] else 'enabled'}")
        else:
            users.set_password(engine, args.name, read_password(args.password_stdin, confirm=True),
                               actor=actor, settings=s)
            print(f"password of {args.name} changed")
        return 0
    finally:
        engine.dispose()


def _state(r: dict) -> str:
    locked = r["locked_until"] is not None and r["locked_until"] > datetime.now(UTC)
    return "disabled" if r["disabled"] else "locked" if locked else "active"


_COLUMNS = (Column("name", 24), Column("role", 10), Column("state", 10, value=_state),
            Column("email", value=lambda r: r["email"] or ""))


def _list(args, rows) -> int:
    keys = ("name", "role", "email", "disabled", "has_password", "locked_until", "created_at")
    print_rows([{k: r[k] for k in keys} for r in rows], args.format, _COLUMNS,
               empty="no users yet: add the first admin with `python -m monitoring users add NAME --role admin`")
    return 0
