"""Issue 9's bar, on data nobody on this team generated (NannyML's bundled sets, converted
only by a [columns] mapping in a monitoring.toml written here), with default settings.

- Census (US ACS, Massachusetts): NannyML's published story is a covariate shift in
  analysis rows 135000-139999 where RELP, AGEP and SCHL move. In the file the shifted
  block is wider (the group-quarters rows, RELP 16/17, of 2017-2018 sit in rows
  ~133000-144000 and nowhere else, which is also why RELP differs from the reference in
  every other chunk of those years: it lost 7% of its mass). The spike is singled out as
  the only chunks where RELP, AGEP and SCHL drift together, and the stable columns
  (CIT, DEYE, DEAR, NATIVITY, SEX) are flagged in at most 1% of chunks. Two shapes: the
  batch log with no time (row chunks) and the "4-year history" (the same rows with a
  synthetic timestamp spreading each year's rows over that year, reference file = 2015).
- Car loan: car_value, salary_range, loan_length and repaid_loan_on_prev_car drift from
  2019-04 on; debt_to_income_ratio, size_of_downpayment and driver_tenure never do.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from monitoring.cli.main import main
from monitoring.config import load_config
from monitoring.drift.report import drift_report
from tests.thirdparty import nannyml_table

CENSUS_FEATURES = ("AGEP", "SCHL", "MAR", "RELP", "DIS", "ESP", "CIT", "MIG", "MIL", "ANC", "NATIVITY",
                   "DEAR", "DEYE", "DREM", "SEX", "RAC1P")
SPIKE = (135_000, 139_999)  # NannyML's published rows
STABLE = ("CIT", "DEYE", "DEAR", "NATIVITY", "SEX")
SHIFTED = ("RELP", "AGEP", "SCHL")
CAR_DRIFT = ("car_value", "salary_range", "loan_length", "repaid_loan_on_prev_car")
CAR_STABLE = ("debt_to_income_ratio", "size_of_downpayment", "driver_tenure")


def census(tmp: Path, with_time: bool) -> Path:
    """Logs and reference of the census set plus the monitoring.toml naming them."""
    logs = tmp / "census_logs"
    logs.mkdir()
    ref = tmp / "census_reference.parquet"
    pq.write_table(nannyml_table("employment_MA_reference.pq"), ref)
    analysis = tmp / "analysis_raw.parquet"
    pq.write_table(nannyml_table("employment_MA_analysis.pq"), analysis)
    if with_time:  # each year's rows spread evenly over that year, in file order
        con = duckdb.connect()
        con.execute(f"""COPY (SELECT * EXCLUDE (rn, ny, file_row_number),
            make_date(year::INT, 1, 1)::TIMESTAMP + to_microseconds(CAST(rn * (make_date(year::INT + 1, 1, 1)
              - make_date(year::INT, 1, 1)) * 86400e6 / ny AS BIGINT)) AS timestamp
            FROM (SELECT *, row_number() OVER (PARTITION BY year ORDER BY file_row_number) - 1 AS rn,
                         count(*) OVER (PARTITION BY year) AS ny
                  FROM read_parquet('{analysis}', file_row_number = true))
            ORDER BY file_row_number) TO '{logs / "analysis.parquet"}'""")
        con.close()
    else:
        analysis.rename(logs / "analysis.parquet")
    cfg = tmp / "monitoring.toml"
    # `year` is the calendar in disguise (2015 in the reference, 2016-2018 after): not a feature
    cfg.write_text(f'reference = "{ref}"\ndata_dir = "{tmp / "data"}"\n\n[columns]\nrequest_id = "id"\n'
                   'prediction = "prediction"\nscore = "predicted_probability"\n'
                   f'features = {list(CENSUS_FEATURES)!r}\n'.replace("'", '"'))
    return cfg


def car_loan(tmp: Path) -> Path:
    logs = tmp / "car_logs"
    logs.mkdir()
    ref = tmp / "car_reference.parquet"
    pq.write_table(nannyml_table("synthetic_car_loan_reference.csv"), ref)
    pq.write_table(nannyml_table("synthetic_car_loan_analysis.csv"), logs / "analysis.parquet")
    cfg = tmp / "monitoring.toml"
    cfg.write_text(f'reference = "{ref}"\ndata_dir = "{tmp / "data"}"\n\n[columns]\nrequest_id = "id"\n'
                   'timestamp = "timestamp"\nprediction = "y_pred"\nscore = "y_pred_proba"\n')
    return cfg


def _report(cfg: Path, logs: Path) -> dict:
    return drift_report(load_config(str(cfg), {"logs": str(logs)}), chunk="auto")


def _flagged(ot: dict, name: str) -> list[dict]:
    return [c for c in ot["chunks"] if c["scores"].get(name, {}).get("drifted")]


@pytest.fixture(scope="module", params=[False, True], ids=["rows", "4-year-history"])
def census_report(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("census")
    cfg = census(tmp, request.param)
    return request.param, _report(cfg, tmp / "census_logs")


def test_census_spike_singled_out(census_report):
    with_time, r = census_report
    ot = r["over_time"]
    assert ot["requested"] == "auto" and ot["reason"].startswith("auto:")
    assert ot["chunk"] == ("month" if with_time else "rows:5000"), ot["reason"]
    chunks = ot["chunks"]
    assert sum(c["rows"] for c in chunks) == 208_892
    assert [c["first_row"] for c in chunks] == [0] + [c["last_row"] + 1 for c in chunks[:-1]]
    together = [c for c in chunks if all(c["scores"][n]["drifted"] for n in SHIFTED)]
    assert together, "no chunk where RELP, AGEP and SCHL drift together"
    # every chunk overlapping NannyML's spike rows is one of them, and they all lie in the
    # shifted block (rows 133000-144000, widened to whole chunks)
    spike = [c for c in chunks if c["first_row"] <= SPIKE[1] and c["last_row"] >= SPIKE[0]]
    assert all(c in together for c in spike), [c["first_row"] for c in spike]
    assert all(130_000 <= c["first_row"] and c["last_row"] < 146_000 for c in together), \
        [(c["first_row"], c["last_row"]) for c in together]
    for name in STABLE:
        share = len(_flagged(ot, name)) / len(chunks)
        assert share <= 0.01, (name, share)
    for c in chunks:  # every score carries its threshold and band, and the decision uses both
        for s in c["scores"].values():
            if s["score"] is not None and s["band"] is not None:
                assert s["drifted"] == (s["score"] >= s["threshold"] and s["score"] > s["band"])


def test_car_loan_drift_from_april_2019_and_never_in_the_stable_columns(tmp_path):
    cfg = car_loan(tmp_path)
    r = _report(cfg, tmp_path / "car_logs")
    ot = r["over_time"]
    april = datetime(2019, 4, 1, tzinfo=UTC)
    for name in CAR_DRIFT:
        flagged = [c["start"] for c in _flagged(ot, name)]
        after = [c["start"] for c in ot["chunks"] if c["start"] >= april]
        assert flagged == after, (name, flagged[:3])
    for name in CAR_STABLE:
        assert _flagged(ot, name) == [], name
        assert name not in r["drifted"]
    assert set(r["drifted"]) >= {"car_value", "loan_length", "repaid_loan_on_prev_car"}


def test_cli_json_chunks_carry_rows_positions_and_scores(tmp_path, capsys):
    cfg = car_loan(tmp_path)
    code = main(["drift", "--config", str(cfg), "--logs", str(tmp_path / "car_logs"),
                 "--chunk", "month", "--format", "json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    ot = out["over_time"]
    assert ot["chunk"] == "month" and len(ot["chunks"]) == 11  # 2018-10 to 2019-08
    first = ot["chunks"][0]
    assert set(first) == {"start", "end", "rows", "first_row", "last_row", "scores"}
    assert set(first["scores"]["car_value"]) >= {"score", "threshold", "band", "drifted"}
    assert ot["drifted_chunks"]["car_value"][0].startswith("2019-04-01")


@pytest.fixture(scope="module")
def car_history(tmp_path_factory):
    """The car-loan set as one history (reference then analysis rows, about 165 a day), no
    reference named: the default reference is the logs' first days, 1,157 rows."""
    import pyarrow as pa

    tmp = tmp_path_factory.mktemp("car_history")
    ref = nannyml_table("synthetic_car_loan_reference.csv")
    ana = nannyml_table("synthetic_car_loan_analysis.csv").join(
        nannyml_table("synthetic_car_loan_analysis_target.csv"), "id").select(ref.schema.names)
    (tmp / "logs").mkdir()
    pq.write_table(pa.concat_tables([ref, ana.cast(ref.schema)]), tmp / "logs" / "loans.parquet")
    cfg = tmp / "monitoring.toml"
    cfg.write_text(f'data_dir = "{tmp / "data"}"\n\n[columns]\nrequest_id = "id"\nprediction = "y_pred"\n'
                   'score = "y_pred_proba"\nlabel = "repaid"\n')
    return cfg, tmp / "logs"


@pytest.mark.parametrize("start, drifted", [
    ("2018-05-01", False), ("2018-08-01", False), ("2018-11-01", False),   # reference period, early analysis
    ("2019-08-22", True),                                                 # NannyML's drifted months
])
def test_auto_chunks_of_a_thin_week_are_days_not_hours(car_history, capsys, start, drifted):
    """A week of about 1,150 rows against a 1,157-row reference: no column can reach a stable
    decision at any size, so `auto` takes the coarsest unit that still makes a series (7 days),
    not 168 hours of 7 rows. The days then say what the week says: every drifting column in
    (nearly) every day in 2019-08, nothing in the quiet weeks, never the stable columns."""
    cfg, logs = car_history
    end = (datetime.fromisoformat(start) + (datetime(2018, 1, 8) - datetime(2018, 1, 1))).date().isoformat()
    assert main(["drift", "--config", str(cfg), "--logs", str(logs), "--start", start, "--end", end,
                 "--chunk", "auto", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    ot = out["over_time"]
    assert ot["chunk"] == "day" and len(ot["chunks"]) == 7, ot["reason"]
    assert "coarsest unit" in ot["reason"] and "chance band alone" in ot["reason"]
    for name in CAR_STABLE:
        assert _flagged(ot, name) == [], name
    if drifted:
        for name in CAR_DRIFT:
            assert len(_flagged(ot, name)) >= 5, (name, len(_flagged(ot, name)))
        assert set(out["drifted"]) >= set(CAR_DRIFT)
    else:
        assert ot["drifted_chunks"] == {} and out["drifted"] == []
