"""Safe defaults: `make run` binds 127.0.0.1, Streamlit's own config agrees, the README says how
to expose the app, and tables offer no unneutralised CSV download."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_make_run_binds_localhost():
    out = subprocess.run(["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    run_line = next(line for line in out.splitlines() if "-m ui.serve" in line)
    assert "--server.address 127.0.0.1" in run_line


def test_make_run_can_be_told_to_listen_elsewhere():
    out = subprocess.run(["make", "-n", "run", "ADDRESS=0.0.0.0"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    assert "--server.address 0.0.0.0" in out


STREAMLIT = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())


@pytest.mark.parametrize(("section", "key", "value"), [
    ("server", "address", "127.0.0.1"),
    ("browser", "gatherUsageStats", False),
    ("client", "disableDataExport", True),
])
def test_streamlit_config(section, key, value):
    assert STREAMLIT[section][key] == value


def test_the_readme_says_how_to_expose_the_app():
    text = (ROOT / "README.md").read_text()
    assert "### Exposing the app" in text and "ADDRESS=0.0.0.0" in text and "reverse proxy" in text


def test_the_page_icon_is_a_local_file():
    app = (ROOT / "app.py").read_text()
    assert 'page_icon=str(Path(__file__).parent / "ui" / "favicon.png")' in app
    assert (ROOT / "ui" / "favicon.png").read_bytes().startswith(b"\x89PNG")
