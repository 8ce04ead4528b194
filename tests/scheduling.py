"""Which worker runs which tests under `-n N --dist loadgroup` (pytest plugin, controller side).

xdist's own `loadgroup` groups nothing with pytest 9: it appends `@group` to `item._nodeid`,
and pytest 9 keeps the id in `item._id` (docs/testing.md). So it scheduled test by test,
and a module whose tests landed on both workers built its module fixtures twice (the alert
evaluation of tests/test_alerts.py, 30 s at load 17, ran on both). `ModuleScheduling`
replaces it for `--dist loadgroup`:

- a unit of work is a test module, or every module marked with the same
  `pytestmark = pytest.mark.xdist_group(NAME)` (read from the module's source: the
  controller collects nothing), so module fixtures are built once and the browser modules
  share one worker's Chromium;
- the units go out longest first (a greedy schedule: the last unit to start is a short one),
  by the seconds each module took in the previous run on this checkout (pytest's cache,
  written at the end of every distributed run), else in the run measured for
  tests/module_seconds.json, else by its number of tests at the median seconds a test.
"""

from __future__ import annotations

import ast
import json
import statistics
from collections import defaultdict
from pathlib import Path

import pytest
from xdist.scheduler import LoadScopeScheduling

CACHE_KEY = "modelwatch/module-seconds"
MEASURED = Path(__file__).resolve().parent / "module_seconds.json"


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def declared_group(path: Path) -> str | None:
    """The `xdist_group` name in a module's top-level `pytestmark`, or None."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets):
            for call in ast.walk(node.value):
                if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                        and call.func.attr == "xdist_group" and call.args
                        and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str)):
                    return call.args[0].value
    return None


def scope_of(nodeid: str, root: Path, groups: dict[str, str | None]) -> str:
    """The unit a test goes out in: "group:NAME" for a module marked xdist_group(NAME), else
    its module's path. `groups` keeps each module's reading (module path -> name or None)."""
    module = module_of(nodeid)
    if module not in groups:
        groups[module] = declared_group(root / module)
    return f"group:{groups[module]}" if groups[module] else module


def known_seconds(config: pytest.Config) -> dict[str, float]:
    """Seconds per module: the last distributed run's (cache) over the committed measurement."""
    seconds: dict[str, float] = {}
    try:
        seconds.update(json.loads(MEASURED.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        pass
    if config.cache is not None:
        seconds.update(config.cache.get(CACHE_KEY, {}))
    return {k: float(v) for k, v in seconds.items() if isinstance(v, (int, float))}


def longest_first(units: dict[str, list[str]], seconds: dict[str, float],
                  members: dict[str, list[str]]) -> list[str]:
    """The units' names, longest expected first. `units`: name -> its test ids; `members`:
    name -> its modules. A module never timed counts its tests at the median seconds a test
    of the timed modules (1 s when none is)."""
    per_test = [seconds[m] / n for m, n in _tests_per_module(units).items() if m in seconds and n]
    rate = statistics.median(per_test) if per_test else 1.0
    counts = _tests_per_module(units)

    def expected(name: str) -> float:
        return sum(seconds.get(m, counts.get(m, 0) * rate) for m in members[name])

    return sorted(units, key=lambda name: (-expected(name), name))


def _tests_per_module(units: dict[str, list[str]]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for ids in units.values():
        for nodeid in ids:
            counts[module_of(nodeid)] += 1
    return counts


class ModuleScheduling(LoadScopeScheduling):
    """loadscope by module (or declared group), longest unit first."""

    def __init__(self, config: pytest.Config, log=None):
        super().__init__(config, log)
        self._groups: dict[str, str | None] = {}
        self._ordered = False

    def _split_scope(self, nodeid: str) -> str:
        return scope_of(nodeid, self.config.rootpath, self._groups)

    def _assign_work_unit(self, node) -> None:
        if not self._ordered:   # the queue is whole before the first unit goes out
            self._ordered = True
            members: dict[str, list[str]] = defaultdict(list)
            for nodeid in self.collection or ():
                m = module_of(nodeid)
                scope = self._split_scope(nodeid)
                if m not in members[scope]:
                    members[scope].append(m)
            units = {scope: list(ids) for scope, ids in self.workqueue.items()}
            order = longest_first(units, known_seconds(self.config), members)
            queue = dict(self.workqueue)
            self.workqueue.clear()
            for scope in order:
                self.workqueue[scope] = queue[scope]
        super()._assign_work_unit(node)


class ModuleTimes:
    """Controller side: adds up each module's setup, call and teardown seconds and keeps them
    in pytest's cache for the next run's order."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.seconds: dict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[module_of(report.nodeid)] += report.duration

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.config.cache is None or not self.seconds:
            return
        known = dict(self.config.cache.get(CACHE_KEY, {}))
        known.update({m: round(s, 2) for m, s in self.seconds.items()})
        self.config.cache.set(CACHE_KEY, known)


def pytest_configure(config: pytest.Config) -> None:
    if config.getvalue("dist") == "loadgroup" and not hasattr(config, "workerinput"):
        config.pluginmanager.register(ModuleTimes(config), "modelwatch-module-times")


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    if config.getvalue("dist") == "loadgroup":
        return ModuleScheduling(config, log)
    return None
