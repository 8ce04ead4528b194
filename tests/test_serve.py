"""`python -m ui.serve` (what `make run` runs): the imports done and frozen before the server
listens, never Streamlit's own or a module that needs a script run. The browser tests start
their servers through it (tests/conftest.py `streamlit_server`)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from ui import serve

ROOT = Path(__file__).resolve().parent.parent


def test_what_is_imported_ahead_never_needs_a_script_run():
    names = serve.ahead()
    assert names and len(set(names)) == len(names)
    assert not [n for n in names if n.split(".")[0] in ("ui", "pages", "streamlit")]
    # what the pages compute and draw with, and what the background jobs import in functions
    for wanted in ("polars", "pandas", "plotly.graph_objects", "monitoring.reports.summary", "monitoring.alerts"):
        assert wanted in names


def test_preload_skips_what_is_not_a_module(monkeypatch):
    monkeypatch.setattr(serve.gc, "freeze", lambda: None)   # never freeze the test session's heap
    # `from monitoring.fmt import md` gives the name monitoring.fmt.md: not a module
    assert serve.preload(("monitoring.fmt", "monitoring.fmt.md", "no_such_module_xyz")) == ["monitoring.fmt"]


def test_in_a_fresh_interpreter_the_heavy_imports_are_done_and_frozen_and_streamlit_is_not():
    code = textwrap.dedent("""
        import gc, json, sys
        from ui import serve
        serve.preload(serve.ahead())
        print("PROBE" + json.dumps({"mods": sorted(m for m in sys.modules if "." not in m),
                                    "sub": [m for m in ("scipy.special", "scipy.stats") if m in sys.modules],
                                    "frozen": gc.get_freeze_count()}))
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    line = next((x for x in out.stdout.splitlines() if x.startswith("PROBE")), None)
    assert line, out.stderr[-2000:]
    seen = json.loads(line.removeprefix("PROBE"))
    assert {"polars", "duckdb", "sqlalchemy", "scipy", "plotly", "pyarrow", "pandas"} <= set(seen["mods"])
    assert seen["sub"] == ["scipy.special", "scipy.stats"]   # the breach test's and the evaluation's
    assert "streamlit" not in seen["mods"]
    assert seen["frozen"] > 10_000     # the modules' objects, out of every later collection


def test_an_unreadable_page_script_does_not_stop_the_server_starting(monkeypatch, caplog):
    from ui import warm

    def broken():
        raise SyntaxError("invalid syntax (broken.py, line 1)")
    monkeypatch.setattr(warm, "page_modules", broken)
    names = serve.ahead()
    assert "pandas" in names and "monitoring.alerts" in names   # DRAWING and BACKGROUND still
    assert "page scripts not read" in caplog.text


def test_make_run_serves_through_it():
    out = subprocess.run(["make", "-n", "run", "ADDRESS=127.0.0.1", "PORT=8501"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "-m ui.serve --server.address 127.0.0.1 --server.port 8501" in out


def test_a_module_that_fails_to_import_is_warned_of_and_skipped(monkeypatch, tmp_path, caplog):
    from ui import warm

    (tmp_path / "mw_broken_probe.py").write_text("raise RuntimeError('half written')\n")
    (tmp_path / "mw_missing_dep_probe.py").write_text("import mw_no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    done = warm.import_all(("json", "mw_broken_probe", "mw_missing_dep_probe", "json.nope_xyz"), "probe")
    assert done == ["json"]
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 2         # the not-a-module name is skipped quietly
    assert "mw_broken_probe not imported: half written" in warned[0]
    assert "mw_missing_dep_probe not imported" in warned[1] and "mw_no_such_dependency_xyz" in warned[1]


def test_importing_stops_when_asked():
    from ui import warm

    asked = iter([False, True])
    assert warm.import_all(("json", "colorsys"), "probe", stop=lambda: next(asked)) == ["json"]
