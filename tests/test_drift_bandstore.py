"""Chance bands kept on disk (monitoring/drift/bandstore.py): a fresh process reads the stored
simulations and gets exactly the bands it would have drawn; any change of what a simulation
depends on is another file (a miss); what cannot be read is a miss, never an error. The
oracle of the bands themselves is the band written out in numpy below (seeded Poisson
draws scored by the Wasserstein and Jensen-Shannon distances), as bands.py computed it
before the Wasserstein quantile was divided by the std after the quantile."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from monitoring.drift import bands, bandstore
from monitoring.drift.bands import Bands, atom_probs, categorical_model, numeric_model
from monitoring.drift.bandstore import BandStore

ROOT = Path(__file__).resolve().parent.parent
NUM, CAT = ("x", "feature"), ("c", "feature")
SIZES = (50, 300, 2_000, 40_000, 200_000)  # below, between and above the grid's top


def _models(seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    x = np.round(rng.lognormal(3, 0.6, 4_000), 1)   # ties: fewer than 512 distinct atoms
    num = numeric_model(NUM, "wasserstein", np.quantile(x, atom_probs(), method="inverted_cdf").tolist(),
                        len(x), float(x.std()), (10.0, 20.0, 40.0), (0, 0, 0, 0))
    cat = categorical_model(CAT, "jensenshannon", (500, 300, 150, 50, 0))
    return {NUM: num, CAT: cat}


def _figures(b: Bands) -> list[float]:
    """Everything a page asks of the bands: a band per size, the mean, the stable size."""
    out = [b.band(k, n) for k in (NUM, CAT) for n in SIZES]
    out += [b.mean(k, 700.0) for k in (NUM, CAT)]
    out += [float(b.stable_size(k, 0.05, 10 ** 7) or -1) for k in (NUM, CAT)]
    return out


@pytest.fixture
def draws(monkeypatch):
    """The (key, step) of every simulation drawn, not read."""
    seen: list[tuple] = []
    real = bands.simulate

    def counted(model, key, step, n, q):
        seen.append((key, step))
        return real(model, key, step, n, q)

    monkeypatch.setattr(bands, "simulate", counted)
    return seen


def _old_sim(model, key, step: int, n_draws: int = bands.DRAWS, q: float = bands.BAND_QUANTILE):
    """The simulation as bands.py drew it: seeded Poisson counts, scored in numpy."""
    rng = np.random.default_rng([bands.SEED, zlib.crc32(repr(key).encode()), step])
    size = max(1, round(2 ** (step / 2)))
    counts = rng.poisson(size * model.probs, size=(n_draws, len(model.probs)))
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    if model.kind == "numeric":
        gap = np.abs(np.cumsum(model.probs)[None, :] - np.cumsum(share, axis=1))[:, :-1]
        scores = gap @ np.diff(model.values) / model.std
    else:
        p = np.broadcast_to(model.probs, share.shape)
        m = (p + share) / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            kl_p, kl_q = (np.where(a > 0, a * np.log2(a / m), 0.0).sum(axis=1) for a in (p, share))
        scores = np.sqrt((kl_p + kl_q) / 2)
    return float(np.quantile(scores, q)), float(np.mean(scores))


@pytest.mark.parametrize("key", [NUM, CAT])
def test_simulations_equal_the_numpy_oracle(key):
    """Jensen-Shannon unchanged to the bit; Wasserstein's quantile divided by the std after
    the quantile, not before: the same to within float rounding (1e-12, Monte Carlo error
    is ~1e-2 of a band)."""
    b = Bands(_models())
    for step in (0, 5, 12, 20, b._top(key)):
        got, want = b._sim(key, step), _old_sim(b.models[key], key, step)
        if key == CAT:
            assert got == want
        else:
            assert got == pytest.approx(want, rel=1e-12, abs=0)


def test_a_fresh_process_reads_the_stored_bands(tmp_path, draws):
    """Bands with a store draw and write; another Python process with the same store reads
    every simulation (it has no random generator to draw with) and gets the very figures
    of Bands that drew them without any store."""
    fresh = _figures(Bands(_models()))
    n_fresh = len(draws)
    assert n_fresh > 10
    kept = Bands(_models(), store=BandStore(tmp_path))
    stored = _figures(kept)
    assert stored == fresh and not list(tmp_path.glob("*.json"))   # written by `save`
    kept.save()
    assert len(list(tmp_path.glob("*.json"))) == 2   # one file per column
    script = (
        "import json, sys, numpy as np\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "from tests.test_drift_bandstore import _figures, _models\n"
        "from monitoring.drift.bands import Bands\n"
        "from monitoring.drift.bandstore import BandStore\n"
        "b = Bands(_models(), store=BandStore(sys.argv[1]))\n"
        "np.random.default_rng = None   # a simulation would fail: everything must be read\n"
        "print(json.dumps(_figures(b)))\n")
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path), str(ROOT)], capture_output=True,
                         text=True, cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == fresh


def _changed(what: str, monkeypatch) -> Bands:
    m = _models()
    if what == "draws":
        return Bands(m, draws=1000)
    if what == "quantile":
        return Bands(m, quantile=0.99)
    if what == "seed":
        monkeypatch.setattr(bands, "SEED", bands.SEED + 1)
    elif what == "code":
        monkeypatch.setattr(bands, "_CODE", "0" * 32)
    elif what == "reference values":
        m = _models(seed=2) | {CAT: categorical_model(CAT, "jensenshannon", (501, 300, 150, 50, 0))}
    elif what == "column name":
        m = {("y", "feature"): replace(m[NUM], key=("y", "feature")), ("d", "feature"): replace(m[CAT], key=("d", "feature"))}
    elif what == "method":
        m = {NUM: replace(m[NUM], method="ks"), CAT: replace(m[CAT], method="psi")}
    elif what == "reference size":
        m = {k: replace(v, m=v.m + 1) for k, v in m.items()}
    return Bands(m)


@pytest.mark.parametrize("what", ["draws", "quantile", "seed", "code", "reference values", "column name",
                                  "method", "reference size"])
def test_a_change_of_any_input_misses(tmp_path, monkeypatch, draws, what):
    store = BandStore(tmp_path)
    first = Bands(_models(), store=store)
    first.band(NUM, 2_000), first.band(CAT, 2_000)
    first.save()
    drawn, before = len(draws), {first.digest(k) for k in first.models}
    b = _changed(what, monkeypatch)
    b.store = store
    keys = list(b.models)
    assert {b.digest(k) for k in keys}.isdisjoint(before)
    for k in keys:
        b.band(k, 2_000)
    b.save()
    assert len(draws) - drawn == drawn   # drawn again, none read
    assert len(list(tmp_path.glob("*.json"))) == 4


def test_a_new_std_reads_the_stored_wasserstein_simulation(tmp_path, draws):
    """DuckDB sums the std in parallel: its last bits differ from one process to the next.
    The stored simulation is in the values' units, so another std reads it and divides."""
    store = BandStore(tmp_path)
    one = Bands(_models(), store=store)
    want = one.band(NUM, 2_000)
    one.save()
    drawn = len(draws)
    models = _models()
    models[NUM] = replace(models[NUM], std=models[NUM].std * (1 + 3e-16))
    assert models[NUM].std != one.models[NUM].std
    other = Bands(models, store=store)
    assert other.digest(NUM) == one.digest(NUM)
    got = other.band(NUM, 2_000)
    assert len(draws) == drawn   # read, not drawn
    assert got == Bands(models).band(NUM, 2_000)   # what drawing with that std gives
    assert got == pytest.approx(want, rel=1e-14)


def _close(a: list, b: list) -> bool:
    """Equal, None where the other is None (p-value tests), else within float rounding: the
    std of a numeric column differs in its last bits from one run to the next."""
    return len(a) == len(b) and all((x is None) == (y is None) and (x is None or x == pytest.approx(y, rel=1e-12))
                                    for x, y in zip(a, b, strict=True))


def test_analyze_in_a_restarted_process_reads_its_bands(generated_logs, tmp_path, monkeypatch, draws):
    """The Drift page's comparison (windows.analyze) keeps its bands under the data folder;
    with the process's shared Bands gone, as in a restarted server, it draws none again
    and decides with the same bands."""
    from monitoring import drift
    from monitoring.config import load_config
    from monitoring.logs.workspace import open_workspace

    cfg = load_config(overrides={"logs": str(generated_logs), "data_dir": str(tmp_path)})
    ws = open_workspace(cfg)
    s = drift.load_settings({})
    ref = drift.resolve_reference(cfg, s, ws.extent)
    cur = drift.default_current(ref, ws.extent)

    def run():
        monkeypatch.setattr(bands, "_SHARED", {})
        r = drift.analyze(ws, ref, cur, s)
        ot = drift.analyze_over_time(ws, ref, cur, r, s, "day")
        return [(f.name, f.band, f.drifted) for f in r.all], ot.scores.select("name", "k", "band", "drifted")

    first, first_ot = run()
    drawn = len(draws)
    assert drawn > 0 and list((tmp_path / "cache" / "bands").glob("*.json"))
    again, again_ot = run()
    assert len(draws) == drawn
    assert [(n, d) for n, _, d in again] == [(n, d) for n, _, d in first]
    assert _close([b for _, b, _ in again], [b for _, b, _ in first])
    assert again_ot["drifted"].to_list() == first_ot["drifted"].to_list()
    assert _close(again_ot["band"].to_list(), first_ot["band"].to_list())
    ws.con.close()


def test_stored_values_are_exact_floats_and_inf(tmp_path):
    store = BandStore(tmp_path)
    sims = {0: (float("inf"), 0.1 + 0.2), 7: (1e-300, 2 / 3), 30: (0.0, 5e-324)}
    store.write("d" * 32, sims)
    assert store.read("d" * 32) == sims
    store.write("d" * 32, {8: (1.5, 2.5)})     # merged with what is there
    assert store.read("d" * 32) == sims | {8: (1.5, 2.5)}
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("text", ["", "{", "[]", '{"format": 1, "digest": "other", "sims": {}}',
                                  '{"format": 99, "digest": "DIGEST", "sims": {"1": [1, 2]}}',
                                  '{"format": 1, "digest": "DIGEST", "sims": {"1": "x"}}'])
def test_an_unreadable_or_foreign_file_is_a_miss(tmp_path, draws, text):
    b = Bands(_models(), store=BandStore(tmp_path))
    digest = b.digest(CAT)
    (tmp_path / f"{digest}.json").write_text(text.replace("DIGEST", digest))
    assert b.band(CAT, 2_000) == Bands(_models()).band(CAT, 2_000)
    assert draws and all(k == CAT for k, _ in draws)
    b.save()
    assert BandStore(tmp_path).read(digest)   # rewritten whole


def test_a_read_only_folder_costs_only_the_simulations(tmp_path, draws):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        b = Bands(_models(), store=BandStore(folder))
        assert b.band(NUM, 2_000) == Bands(_models()).band(NUM, 2_000)
        b.save()
        assert not list(folder.iterdir())
    finally:
        folder.chmod(0o700)


def test_a_file_that_cannot_be_written_is_left_out(tmp_path, draws):
    """Where the folder cannot be made (a file in its place), the bands are drawn and served."""
    (tmp_path / "cache").write_text("not a folder")
    store = bandstore.for_folder(tmp_path)
    assert store.folder == tmp_path / "cache" / "bands"
    b = Bands(_models(), store=store)
    assert b.band(CAT, 300) == Bands(_models()).band(CAT, 300)
    b.save()
    assert bandstore.for_folder(None) is None and bandstore.for_folder("") is None


def test_the_oldest_files_go_beyond_max_files(tmp_path, monkeypatch):
    monkeypatch.setattr(bandstore, "MAX_FILES", 3)
    store = BandStore(tmp_path)
    for i in range(5):
        store.write(f"{i:032x}", {0: (float(i), 0.0)})
        os.utime(tmp_path / f"{i:032x}.json", (1_000 + i, 1_000 + i))
    assert sorted(p.stem for p in tmp_path.glob("*.json")) == [f"{i:032x}" for i in (2, 3, 4)]


def test_prepare_draws_on_threads_what_band_and_mean_read_and_the_same_values(draws):
    """`prepare` draws (on WORKERS threads) the grid steps the later `band`, `mean` and
    `stable_size` calls read, with the values the one-at-a-time draws give; only the
    stable size's walk below the top is left to draw."""
    lazy = Bands(_models())
    want = _figures(lazy)
    ready = Bands(_models())
    ready.prepare([(k, n) for k in (NUM, CAT) for n in SIZES])
    ready.prepare(((k, 700.0) for k in (NUM, CAT)), effective=True)
    ready.prepare_top([NUM, CAT, ("not a column", "feature")])
    prepared = set(ready._cache)
    assert {(k, ready._top(k)) for k in (NUM, CAT)} <= prepared <= set(lazy._cache)
    before = len(draws)
    assert _figures(ready) == want
    later = draws[before:]
    assert len(later) < len(prepared) and not set(later) & prepared
    assert set(ready._cache) == set(lazy._cache)


def test_shared_bands_ignore_the_last_bits_of_a_std(monkeypatch):
    """Two comparisons with one reference share their Bands though DuckDB's parallel sums
    gave the std other last bits (the sample logs' 7 numeric columns did so from one query
    to the next); another std, or other values, is another Bands."""
    monkeypatch.setattr(bands, "_SHARED", {})
    one = _models()
    jitter = one | {NUM: replace(one[NUM], std=one[NUM].std * (1 + 4e-16))}
    assert jitter[NUM].std != one[NUM].std
    first = bands.shared(one)
    assert bands.shared(jitter) is first
    assert bands.shared(one | {NUM: replace(one[NUM], std=one[NUM].std * 1.001)}) is not first
    assert bands.shared(_models(seed=2)) is not first
