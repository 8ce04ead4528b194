"""monitoring.logger's fast paths give what the plain paths give: ids in the UUIDv7 layout
(checked field by field with the standard library's uuid), feature columns equal to a per-row
hand transposition, and Parquet encodings chosen per column."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq
import pytest

from monitoring.logger import PredictionLogger
from monitoring.logger import ids as ids_module
from monitoring.logger.ids import new_id
from monitoring.logger.schema import TableBuilder
from tests.logger_helpers import read_rows, visible_files

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


# -- request ids -----------------------------------------------------------------------------

def _fields(request_id: str) -> tuple[int, int, int, int, int]:
    """(version, unix ms, sequence, node, variant ok) of an id, from uuid's own parsing."""
    u = uuid.UUID(request_id)
    seq = ((u.int >> 64) & 0xFFF) << 14 | (u.int >> 48) & 0x3FFF
    return u.version, u.int >> 80, seq, u.int & 0xFFFFFFFFFFFF, u.variant == uuid.RFC_4122


# Positions within one millisecond: the first, the last of the formatting table, the first
# formatted in full, the last with the high sequence bits zero, the first using them.
@pytest.mark.parametrize("position", [0, 1, 1023, 1024, 16383, 16384, 16500])
def test_ids_carry_version_millisecond_sequence_and_node(position):
    # A millisecond later than any id made so far in this process, so the sequence starts at 0.
    ts_us = (max(time.time_ns() // 1_000_000, ids_module._last_ms) + 1000) * 1000 + 999
    ids = [new_id(ts_us) for _ in range(position + 1)]
    version, ms, seq, node, variant_ok = _fields(ids[-1])
    assert (version, ms, seq, variant_ok) == (7, ts_us // 1000, position, True)
    assert len(ids[-1]) == 36 and ids[-1] == str(uuid.UUID(ids[-1]))   # canonical lowercase form
    assert {_fields(i)[3] for i in ids} == {node}                     # one node per process
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


# -- feature columns -------------------------------------------------------------------------

# Batches of feature dicts: the fast path (same keys in every row) and each way out of it.
BATCHES = {
    "same keys, same order": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}, {"a": 3, "b": "z"}],
    "same keys, other order": [{"a": 1, "b": "x"}, {"b": "y", "a": 2}],
    "a row without a key": [{"a": 1, "b": "x"}, {"a": 2}],
    "a row with one more key": [{"a": 1}, {"a": 2, "c": 0.5}],
    "as many keys, not the same": [{"a": 1, "b": "x"}, {"a": 2, "c": 0.5}],
    "a row without features": [{"a": 1}, None, {"a": 3}],
    "no features at all": [None, None],
    "first row empty": [{}, {"a": 2}],
}


def _rows(features: list) -> list[tuple]:
    base = int(T0.timestamp() * 1e6)
    return [(f"id-{i}", base + i, "/v1", 1.0, "ok", None, 1, 0.5, None, f)
            for i, f in enumerate(features)]


@pytest.mark.parametrize("name", list(BATCHES))
def test_feature_columns_equal_a_hand_transposition(name):
    features = BATCHES[name]
    table, coerced = TableBuilder("m", "v").build(_rows(features))
    keys = list(dict.fromkeys(k for f in features if f for k in f))   # order of first appearance
    contract = ["request_id", "timestamp", "model_name", "model_version", "endpoint", "status",
                "error_type", "latency_ms", "prediction", "score"]
    assert table.column_names == contract + keys
    got = table.to_pylist()
    for k in keys:
        assert [r[k] for r in got] == [f.get(k) if f else None for f in features], k
    assert coerced == {}


def test_known_features_missing_from_a_later_batch_stay_as_nulls():
    builder = TableBuilder("m", "v")
    builder.build(_rows([{"a": 1, "b": 2}]))
    table, _ = builder.build(_rows([{"a": 5}, {"a": 6}]))
    assert table.column("b").to_pylist() == [None, None]
    assert table.column("a").to_pylist() == [5, 6]


# -- files -------------------------------------------------------------------------------------

def test_text_columns_are_dictionary_encoded_and_request_ids_are_not(tmp_path):
    with PredictionLogger(tmp_path, "credit", "v1", install_signal_handler=False) as lg:
        for i in range(500):
            lg.log(prediction=i % 2, latency_ms=1.0 + i, endpoint="/v1/predict",
                   features={"region": "nesw"[i % 4], "age": 20 + i % 60},
                   timestamp=T0 + timedelta(seconds=i))
    (path,) = visible_files(tmp_path)
    meta = pq.ParquetFile(path).metadata.row_group(0)
    encodings = {meta.column(i).path_in_schema: meta.column(i).encodings for i in range(meta.num_columns)}
    dictionary = {name for name, enc in encodings.items() if any("DICTIONARY" in e for e in enc)}
    assert dictionary == {"model_name", "model_version", "endpoint", "status", "error_type", "region"}
    rows = read_rows(tmp_path)
    assert rows.num_rows == 500 and len(set(rows["request_id"].to_pylist())) == 500
    assert rows["timestamp"].to_pylist() == [T0 + timedelta(seconds=i) for i in range(500)]
