"""House rules that keep the codebase in shape (shared/STYLE.md)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_monitoring_never_imports_streamlit_in_source():
    for path in (ROOT / "monitoring").rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n == "streamlit" or n.startswith("streamlit.") for n in names), path


def test_importing_every_monitoring_module_loads_no_streamlit():
    code = (
        "import importlib, pkgutil, sys, monitoring\n"
        "for m in pkgutil.walk_packages(monitoring.__path__, 'monitoring.'):\n"
        "    if m.name != 'monitoring.__main__':\n"
        "        importlib.import_module(m.name)\n"
        "assert 'streamlit' not in sys.modules, 'streamlit was imported'\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_no_html_from_logs():
    for path in list((ROOT / "pages").glob("*.py")) + list((ROOT / "ui").glob("*.py")) + [ROOT / "app.py"]:
        text = path.read_text()
        assert "unsafe_allow_html=True" not in text, path
        assert "st.html(" not in text, path


def test_pages_are_thin():
    for path in (ROOT / "pages").glob("*.py"):
        assert len(path.read_text().splitlines()) <= 150, f"{path} has grown past a page of code"
