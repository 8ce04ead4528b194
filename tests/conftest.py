"""Shared fixtures. Logs come from the same seeded generator as sample_logs/ (so every
test knows the incidents it should find), written once per session into a temp folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from monitoring.config import load_config
from monitoring.source import connect

ROOT = Path(__file__).resolve().parent.parent

# Tests must not read a developer's own settings or database.
for _var in ("MONITORING_LOGS", "MONITORING_REFERENCE", "MONITORING_LABELS", "MONITORING_DB_URL",
             "MONITORING_CONFIG", "MONITORING_DATA_DIR"):
    os.environ.pop(_var, None)


@pytest.fixture(scope="session")
def generated_logs(tmp_path_factory) -> Path:
    """30 days x 1,500 rows/day with every documented incident (default start and seed)."""
    from monitoring import sample_data

    out = tmp_path_factory.mktemp("generated") / "logs"
    sample_data.generate(out, days=30, rows_per_day=1500, seed=11)
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
