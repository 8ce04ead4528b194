"""Prediction sets nobody on this team generated: NannyML's bundled datasets.

`make test` downloads the `nannyml` 0.13.1 wheel from PyPI (install time, never at test
time) into `.venv/thirdparty/`; the tests read its CSV and Parquet files straight from the
zip. The package itself is never imported. Point `MODELWATCH_THIRDPARTY_DIR` elsewhere to
use a wheel you already have. Outside CI a missing wheel skips these tests; in CI it fails.

    table = nannyml_table("synthetic_car_loan_reference.csv")   # a pyarrow.Table

The sets and their published stories (NannyML's docs):
- employment_MA_*.pq: US census (ACS) employment in Massachusetts; analysis rows
  135000-139999 hold a covariate shift in RELP, AGEP and SCHL; no timestamp (batch).
- synthetic_car_loan_*.csv: binary classification; car_value, salary_range, loan_length and
  repaid_loan_on_prev_car drift from 2019-04 on; labels in a separate target file.
- regression_synthetic_*.csv: car-price regression, labels in a separate target file.
- mc_*.csv: credit-card multiclass with per-class probabilities y_pred_proba_<class>.
- california_housing_*.csv: housing, binary classification with monthly timestamps.
"""

from __future__ import annotations

import io
import os
import zipfile
from functools import cache
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parent.parent
WHEEL = "nannyml-0.13.1-py3-none-any.whl"


def wheel_path() -> Path | None:
    folder = Path(os.environ.get("MODELWATCH_THIRDPARTY_DIR", ROOT / ".venv" / "thirdparty"))
    path = folder / WHEEL
    return path if path.is_file() else None


def require_wheel() -> Path:
    path = wheel_path()
    if path is None:
        msg = f"{WHEEL} not found (make test downloads it into .venv/thirdparty/)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + " — required in CI")
        pytest.skip(msg)
    return path


@cache
def _read(name: str) -> pa.Table:
    with zipfile.ZipFile(require_wheel()) as z:
        data = z.read(f"nannyml/datasets/data/{name}")
    if name.endswith(".csv"):
        return pacsv.read_csv(io.BytesIO(data))
    return pq.read_table(io.BytesIO(data))


def nannyml_table(name: str) -> pa.Table:
    """One bundled file as an Arrow table (cached per test run)."""
    return _read(name)
