"""Shared fixtures. Logs come from the same seeded generator as sample_logs/ (so every
test knows the incidents it should find), written once per session into a temp folder."""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pytest

from monitoring.config import load_config
from monitoring.logs.source import connect

pytest_plugins = ["tests.postgres",    # postgres_server / postgres_url: a real PostgreSQL
                  "tests.scheduling"]  # -n N --dist loadgroup: whole modules, longest first

ROOT = Path(__file__).resolve().parent.parent

# Tests must not read a developer's own settings or database.
for _var in ("MONITORING_LOGS", "MONITORING_REFERENCE", "MONITORING_LABELS", "MONITORING_DB_URL",
             "MONITORING_CONFIG", "MONITORING_DATA_DIR"):
    os.environ.pop(_var, None)
# Caches and default databases go to a private folder, never the working tree.
os.environ["MONITORING_DATA_DIR"] = tempfile.mkdtemp(prefix="modelwatch-test-data-")


@pytest.fixture(autouse=True, scope="module")
def _background_jobs_end_with_their_module():
    """At the end of each test module, the app's background jobs its page tests queued (alert
    evaluation, prefetch, warm-up, rollup builds, duplicate checks) are told to stop and waited
    for (ui.shutdown.stand_down), and Streamlit's caches are cleared: no work of one module
    runs into the next one's tests on the same worker, nor holds a future for them."""
    yield
    if "ui.shutdown" not in sys.modules:   # no page or ui module ran in this process yet
        return
    from ui import shutdown

    left = shutdown.stand_down(timeout=300)
    if left:
        warnings.warn(f"background work still running after its module's tests: {left}", stacklevel=1)
    if "streamlit" in sys.modules:
        import streamlit as st

        st.cache_data.clear()
        st.cache_resource.clear()


@pytest.fixture(autouse=True, scope="session")
def _cheapest_password_hashing():
    """Passwords hashed in this process use argon2's cheapest parameters (0.1 ms, not 0.25 s,
    a hash; what the tests check of hashing does not depend on its cost). The product's own
    cost is checked by tests/test_auth.py in a fresh interpreter and with `default_hashing`."""
    from argon2 import profiles

    from monitoring.auth import passwords

    passwords.use(profiles.CHEAPEST)
    yield
    passwords.use(passwords.DEFAULT)


@pytest.fixture
def default_hashing():
    """The product's own argon2 cost for one test (the suite otherwise hashes cheaply)."""
    from argon2 import profiles

    from monitoring.auth import passwords

    passwords.use(passwords.DEFAULT)
    yield passwords.DEFAULT
    passwords.use(profiles.CHEAPEST)


@pytest.fixture(scope="session")
def generated_logs(tmp_path_factory) -> Path:
    """30 days x 1,500 rows/day with every documented incident (default start and seed)."""
    from monitoring import sample

    out = tmp_path_factory.mktemp("generated") / "logs"
    sample.generate(out, days=30, rows_per_day=1500, seed=11)
    return out


@pytest.fixture(scope="session")
def sample_logs() -> Path:
    return ROOT / "sample_logs"


@pytest.fixture
def con():
    c = connect(load_config(overrides={}))
    yield c
    c.close()


@pytest.fixture
def cfg():
    return load_config()


# -- Streamlit in-process (AppTest) -------------------------------------------------------------

@pytest.fixture
def clear_streamlit_cache():
    """AppTest instances share Streamlit's caches within a run: start each test clean."""
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def app_env(monkeypatch, tmp_path, clear_streamlit_cache):
    """Point the app at given logs (and a private database) for an AppTest run.

        def test_x(app_env, generated_logs):
            at = app_env(logs=generated_logs)   # returns an AppTest of app.py, not yet run
    """
    from streamlit.testing.v1 import AppTest

    def make(logs, **env):
        monkeypatch.chdir(ROOT)
        monkeypatch.setenv("MONITORING_LOGS", str(logs))
        monkeypatch.setenv("MONITORING_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("MONITORING_DB_URL", env.pop("db_url", f"sqlite:///{tmp_path / 'app.sqlite'}"))
        for k, v in env.items():
            monkeypatch.setenv(k, str(v))
        return AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)

    yield make
    # The background jobs this test queued and that have not started (an alert evaluation, a
    # prefetch) are dropped: its caches are cleared, nobody will read them, and the next
    # test's own evaluation would wait behind them on the one worker (docs/testing.md,
    # 2 December). A running job goes on; the module-end stand-down waits for it.
    if "ui.shutdown" in sys.modules:
        from ui import shutdown

        shutdown.drop_queued()


# -- real server + headless Chromium -------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def streamlit_server(tmp_path):
    """Start the server as `make run` does (`python -m ui.serve`: `streamlit run app.py` with
    its imports done first) on 127.0.0.1; returns start(env) -> base URL.
    Every server started is stopped at the end of the test."""
    import subprocess
    import sys
    import time
    import urllib.request

    procs = []

    def start(**env) -> str:
        port = _free_port()
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("MONITORING_")}
        full_env |= {"MONITORING_DATA_DIR": str(tmp_path / "data"),
                     "MONITORING_DB_URL": f"sqlite:///{tmp_path / 'server.sqlite'}"}
        full_env |= {k: str(v) for k, v in env.items()}
        log = open(tmp_path / f"streamlit-{port}.log", "w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "ui.serve",
             "--server.port", str(port), "--server.address", "127.0.0.1",
             "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return url
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"streamlit did not start; log: {(tmp_path / f'streamlit-{port}.log').read_text()[-2000:]}")

    yield start
    for p in procs:
        p.terminate()
        try:
            p.wait(timeout=10)
        except Exception:
            p.kill()


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright (no browser download)."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("Chromium missing in CI: scripts/system-deps.sh should have installed it")
        pytest.skip("Chromium not installed (make test installs it from Debian's packages)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module", params=["UTC", "America/New_York"])
def tz(request):
    """The machine zone for a whole module, UTC then America/New_York (the store-against-raw
    tests: no figure may depend on it)."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    yield request.param
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()


@pytest.fixture
def fresh_warm(monkeypatch):
    """ui.warm with its gate, counters and events new (no warm-up started)."""
    import gc
    import threading

    from ui import warm

    for name, value in (("_gate", threading.Condition()), ("_active", 0), ("_due", False),
                        ("_done", threading.Event()), ("_started", threading.Event()), ("_thread", None), ("_queued", 0),
                        ("_here", threading.local())):
        monkeypatch.setattr(warm, name, value)
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    yield warm
    if warm._thread is not None:
        warm._thread.join(60)
    gc.unfreeze()
