"""The suite's scheduler (tests/scheduling.py): whole modules per worker, the modules of one
xdist_group together, longest first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests import scheduling

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("module, group", [
    ("tests/test_browser.py", "browser"),
    ("tests/test_screenshots.py", "browser"),
    ("tests/test_logger_processes.py", "logger-processes"),
    ("tests/test_rollup_spark.py", "spark"),
    ("tests/test_alerts.py", None),
    ("tests/no_such_module.py", None),
])
def test_the_group_is_read_from_the_modules_pytestmark(module, group):
    assert scheduling.declared_group(ROOT / module) == group
    groups: dict[str, str | None] = {}
    want = f"group:{group}" if group else module
    assert scheduling.scope_of(f"{module}::test_x[a::b]", ROOT, groups) == want
    assert groups == {module: group}


def test_units_go_out_longest_first_unknown_modules_at_the_median_seconds_a_test():
    units = {"a.py": ["a.py::t1", "a.py::t2"], "b.py": ["b.py::t1"],
             "group:g": ["c.py::t1", "d.py::t1", "d.py::t2"], "e.py": [f"e.py::t{i}" for i in range(10)]}
    members = {"a.py": ["a.py"], "b.py": ["b.py"], "group:g": ["c.py", "d.py"], "e.py": ["e.py"]}
    seconds = {"a.py": 10.0, "b.py": 30.0, "c.py": 1.0, "d.py": 12.0}
    # seconds a test: a 5, b 30, c 1, d 6 -> median 5.5; e (never timed): 10 tests -> 55 s
    assert scheduling.longest_first(units, seconds, members) == ["e.py", "b.py", "group:g", "a.py"]
    # nothing timed: by the number of tests (1 s each), ties by name
    assert scheduling.longest_first(units, {}, members) == ["e.py", "group:g", "a.py", "b.py"]


SUITE = {
    "conftest.py": """
        import os, pytest
        @pytest.fixture(scope="module")
        def built(request):
            with open(os.environ["BUILT_LOG"], "a") as f:
                f.write(f"{request.module.__name__} {os.environ['PYTEST_XDIST_WORKER']}\\n")
    """,
    "test_short.py": "def test_a(built): pass\n",
    "test_browser_one.py": "import pytest\npytestmark = pytest.mark.xdist_group('ui')\n"
                           + "".join(f"def test_{i}(built): pass\n" for i in range(3)),
    "test_browser_two.py": "import pytest\npytestmark = [pytest.mark.xdist_group('ui')]\ndef test_x(built): pass\n",
    "test_long.py": "".join(f"def test_{i}(built): pass\n" for i in range(8)),
}


def test_a_distributed_run_builds_each_module_fixture_once_on_one_worker(tmp_path):
    for name, text in SUITE.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    log = tmp_path / "built.log"
    env = dict(os.environ, BUILT_LOG=str(log), PYTHONPATH=str(ROOT))
    run = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-p", "tests.scheduling",
                          "-q", "-v", "--rootdir", str(tmp_path), str(tmp_path)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    built = [line.split() for line in log.read_text().splitlines()]
    assert sorted(m for m, _ in built) == sorted(n[:-3] for n in SUITE if n.startswith("test_"))   # once each
    worker = dict(built)
    assert worker["test_browser_one"] == worker["test_browser_two"]     # one group, one worker
    # every test ran on the worker that built its module's fixture
    for line in run.stdout.splitlines():
        if "PASSED" in line and "[gw" in line:
            gw = line.split("[", 1)[1].split("]", 1)[0]
            module = line.split("PASSED ", 1)[1].split(".py::", 1)[0]
            assert worker[module] == gw, line
    # the times were kept for the next run's order
    cache = json.loads((tmp_path / ".pytest_cache" / "v" / "modelwatch" / "module-seconds").read_text())
    assert set(cache) == {n for n in SUITE if n.startswith("test_")}
