"""`queue create --seed`: any seed a signed 64-bit column holds works and is stored exactly;
anything else is one sentence and exit code 2 (2**70 used to crash the insert)."""

from __future__ import annotations

import json

import pytest

from monitoring.cli.main import main
from monitoring.labelling.sampling import MAX_SEED, QueueSpec, SamplingError
from monitoring.query.filters import Filters

SEEDS = [
    (0, None),
    (7, None),
    (2**63 - 1, None),
    (2**63, "seed must be a whole number from 0 to"),
    (2**70, "seed must be a whole number from 0 to"),
    (-1, "seed must be a whole number from 0 to"),
]


@pytest.mark.parametrize(("seed", "error"), SEEDS)
def test_spec_validation(seed, error):
    spec = QueueSpec(filters=Filters(), size=5, seed=seed)
    if error is None:
        spec.validate()
    else:
        with pytest.raises(SamplingError, match=error):
            spec.validate()


def test_max_seed_is_the_largest_signed_64_bit_integer():
    assert MAX_SEED == 9_223_372_036_854_775_807


@pytest.mark.parametrize(("seed", "error"), SEEDS)
def test_cli(sample_logs, tmp_path, capsys, seed, error):
    db = f"sqlite:///{tmp_path / 'q.sqlite'}"
    code = main(["queue", "create", "--logs", str(sample_logs), "--size", "5", "--seed", str(seed), "--db", db])
    out, err = capsys.readouterr()
    if error is None:
        assert code == 0
        qid = out.strip()
        main(["queue", "status", qid, "--db", db, "--format", "json"])
        assert json.loads(capsys.readouterr().out)["seed"] == seed     # stored exactly
    else:
        assert code == 2 and err.count("\n") == 1 and error in err and "Traceback" not in err
