"""The model registry (models.toml): parsing, one-sentence errors, the models command, and
versions' production figures beside their entries."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from monitoring.cli.main import main
from monitoring.compare.registry import RegistryError, get_entry, load_registry
from monitoring.compare.versions import fleet
from monitoring.config import load_config
from monitoring.logs.workspace import open_workspace

GOOD = """[versions.v1]
trained = 2026-10-01
training_data = "snapshot 1"
code_commit = "abc1234"
owner = "team"
deployed = 2026-10-02T08:30:00Z
validation = { accuracy = 0.9, rows = 1000 }
hyperparameters = { depth = 3 }
"""


def test_a_good_registry(tmp_path):
    p = tmp_path / "models.toml"
    p.write_text(GOOD)
    e = load_registry(str(p))["v1"]
    assert e.trained == datetime(2026, 10, 1, tzinfo=UTC) and e.deployed == datetime(2026, 10, 2, 8, 30, tzinfo=UTC)
    assert e.validation == {"accuracy": 0.9, "rows": 1000.0} and e.hyperparameters == {"depth": 3}
    assert e.retired is None and e.notes == "" and e.model is None


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace('owner = "team"\n', ""), "version 'v1': missing field owner"),
    (lambda t: t.replace("owner", "ownr"), "unknown field 'ownr' (did you mean 'owner'?)"),
    (lambda t: t.replace("trained = 2026-10-01", "trained = 'last week'"), "trained must be a date"),
    (lambda t: t.replace("trained = 2026-10-01", "trained = 2026-11-01"), "deployed (2026-10-02) is before trained"),
    (lambda t: t + "retired = 2026-09-01\n", "retired (2026-09-01) is before deployed"),
    (lambda t: t.replace("accuracy = 0.9", "accuracy = 90"), "validation.accuracy must be a fraction"),
    (lambda t: t.replace("{ accuracy = 0.9, rows = 1000 }", "{}"), "validation must be a table of metrics"),
    (lambda t: t.replace("rows = 1000", "rows = 'many'"), "validation.rows must be a number"),
    (lambda t: t.replace("[versions.v1]", "[v1]"), "unknown top-level key(s) v1"),
    (lambda t: t.replace("[versions.v1]", "[versions.v1"), "not valid TOML"),
    (lambda t: "", "no [versions.NAME] table"),
    (lambda t: t.replace('code_commit = "abc1234"', "code_commit = ''"), "code_commit must be non-empty text"),
])
def test_registry_errors_are_one_sentence(tmp_path, edit, message):
    p = tmp_path / "models.toml"
    p.write_text(edit(GOOD))
    with pytest.raises(RegistryError) as exc:
        load_registry(str(p))
    assert message in str(exc.value) and str(p) in str(exc.value) and "\n" not in str(exc.value)


def test_missing_registry_and_unknown_version(tmp_path):
    with pytest.raises(RegistryError, match="no model registry at"):
        load_registry(str(tmp_path / "nope.toml"))
    p = tmp_path / "models.toml"
    p.write_text(GOOD)
    with pytest.raises(RegistryError, match=r"unknown version 'v11' \(did you mean 'v1'\?\)"):
        get_entry(load_registry(str(p)), "v11", str(p))
    with pytest.raises(RegistryError, match=r"unknown version 'x' \(registered: v1\)"):
        get_entry(load_registry(str(p)), "x", str(p))


def test_sample_registry_beside_production(sample_logs):
    """Every sample version: registry entry, status from traffic (v1 retired 11-01, v3 the
    30% canary), labelled accuracy with a Wilson interval counted by hand in SQL."""
    ws = open_workspace(load_config(overrides={"logs": str(sample_logs)}))
    f = fleet(ws)
    assert f.error is None and f.unregistered == [] and f.not_served == []
    rows = {r.version: r for r in f.rows}
    assert {v: r.status for v, r in rows.items()} == {"v1": "retired", "v2": "active", "v3": "canary"}
    hand = ws.source.query(ws.con, "SELECT model_version AS v, count(*) AS n, count_if(label = prediction) AS k "
                                   "FROM logs WHERE label IS NOT NULL AND NOT is_error GROUP BY 1")
    for r in hand.iter_rows(named=True):
        row = rows[r["v"]]
        assert (row.labelled, round(row.accuracy * row.labelled)) == (r["n"], r["k"])
        assert row.accuracy_ci[0] < row.accuracy < row.accuracy_ci[1]
        assert row.validation_accuracy is not None
    assert rows["v3"].disagree                       # validation 0.893 against ~0.82 in production
    assert rows["v3"].share_recent == pytest.approx(0.3, abs=0.05)


def test_models_cli(sample_logs, capsys, tmp_path):
    assert main(["models", "list", "--logs", str(sample_logs), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [v["version"] for v in out["versions"]] == ["v1", "v2", "v3"] and out["unregistered"] == []
    assert out["versions"][2]["production"]["status"] == "canary"
    assert main(["models", "show", "v2", "--logs", str(sample_logs), "--format", "json"]) == 0
    v2 = json.loads(capsys.readouterr().out)
    assert v2["code_commit"] == "9f3c2ab" and v2["production"]["labelled"] > 0
    assert main(["models", "show", "v7", "--logs", str(sample_logs)]) == 2
    assert "unknown version 'v7'" in capsys.readouterr().err
    bad = tmp_path / "models.toml"
    bad.write_text("[versions.v1]\nowner = 'x'\n")
    assert main(["models", "list", "--logs", str(sample_logs), "--registry", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "missing fields" in err and "Traceback" not in err
