"""Every key of monitoring.toml is checked at load: a table of mistakes -> the one sentence each
gets (did you mean, the expected type or range), and of sections no module declares -> a warning."""

from __future__ import annotations

import pytest

from monitoring.cli.main import main
from monitoring.config import (
    SECTION_OWNERS,
    SECTIONS,
    ConfigError,
    Setting,
    at_least,
    load_config,
    register_section,
)


@pytest.fixture
def toml(tmp_path):
    def write(text: str) -> str:
        p = tmp_path / "monitoring.toml"
        p.write_text(text, encoding="utf-8")
        return str(p)
    return write


# (file text, a regex the error must match)
REFUSED = [
    # top level
    ("exact_quantile_max_row = 5", r"unknown key 'exact_quantile_max_row' \(did you mean 'exact_quantile_max_rows'\?\)"),
    ("duckdb_threads = -3", r"duckdb_threads must be between 0 and 1024, got -3"),
    ("duckdb_threads = 2.5", r"duckdb_threads must be a whole number, got 2.5"),
    ("duckdb_threads = true", r"duckdb_threads must be a whole number, got True"),
    ('duckdb_memory_limit = "lots"', r"duckdb_memory_limit must look like '1GB'"),
    ("exact_quantile_max_rows = 0", r"exact_quantile_max_rows must be at least 1"),
    ("refresh_seconds = 0", r"refresh_seconds must be between 1 and 86400"),
    ("logs = 5", r"logs must be text, got 5"),
    ('dbb_url = "sqlite://"', r"unknown key 'dbb_url' \(did you mean 'db_url'\?\)"),
    ('slo = "fast"', r"\[slo\] must be a table"),
    # [slo]
    ("[slo]\np95_latency = 100", r"\[slo\] unknown key 'p95_latency' \(did you mean 'p95_latency_ms'\?\)"),
    ("[slo]\nerror_rate = 2", r"\[slo\] error_rate must be between 0 and 1"),
    ("[slo]\np95_latency_ms = -1", r"\[slo\] p95_latency_ms must be greater than 0"),
    ('[slo]\np95_latency_ms = "fast"', r"\[slo\] p95_latency_ms must be a number"),
    ("[slo]\ngap_min_minutes = 0", r"\[slo\] gap_min_minutes must be at least 1"),
    ("[slo]\naccuracy_floor = 1.5", r"\[slo\] accuracy_floor must be between 0 and 1"),
    # [columns]
    ('[columns]\nrequest_ids = "id"', r"\[columns\] unknown key 'request_ids' \(did you mean 'request_id'\?\)"),
    ("[columns]\nlatency_ms = 3", r"\[columns\] latency_ms must be text"),
    ('[columns]\nfeatures = "age"', r"\[columns\] features must be a list"),
    ('[columns]\ntimestamp_unit = "minutes"', r"\[columns\] timestamp_unit must be one of"),
    # [drift] and [drift.features.*]
    ('[drift]\nnumeric_methd = "psi"', r"\[drift\] unknown key 'numeric_methd' \(did you mean 'numeric_method'\?\)"),
    ('[drift]\nchunk = "fortnight"', r"\[drift\] chunk"),
    ("[drift]\nchunk_rows = -1", r"\[drift\] chunk_rows must be a positive integer"),
    ('[drift]\nnumeric_method = "psy"', r"'psy' is not a drift test"),
    ('[drift.features.age]\nmethd = "psi"', r"\[drift.features.age\] unknown key 'methd' \(did you mean 'method'\?\)"),
    ("[drift.features.age]\nthreshold = -1", r"\[drift.features.age\] threshold must be a positive number"),
    # [alerts] and [alerts.rules.*]
    ('[alerts]\nwebhook = ["http://x"]', r"\[alerts\] unknown key 'webhook' \(did you mean 'webhooks'\?\)"),
    ('[alerts]\nwebhooks = ["ftp://x"]', r"webhook URL must be http:// or https:// with a host"),
    ('[alerts]\nwebhooks = ["http://"]', r"webhook URL must be http:// or https:// with a host"),
    ("[alerts]\nwebhook_timeout_seconds = 0", r"webhook_timeout_seconds must be greater than 0"),
    ("[alerts]\nwebhook_retries = -1", r"webhook_retries must be at least 0"),
    ("[alerts]\nmerge_minutes = -5", r"merge_minutes must be at least 0"),
    ("[alerts.rules.latency_p9]\nenabled = false", r"unknown rule 'latency_p9' \(did you mean 'latency_p95'\?\)"),
    ("[alerts.rules.latency_p95]\nwindow_minute = 3", r"\[alerts.rules.latency_p95\] unknown key 'window_minute' \(did you mean 'window_minutes'\?\)"),
    ('[alerts.rules.latency_p95]\nenabled = "yes"', r"\[alerts.rules.latency_p95\] enabled must be true or false"),
    ("[alerts.rules.latency_p95]\nwindow_minutes = -30", r"window_minutes cannot be negative"),
]


@pytest.mark.parametrize(("text", "message"), REFUSED, ids=[t.replace("\n", " ") for t, _ in REFUSED])
def test_a_mistake_is_refused_in_one_sentence(toml, text, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_config(toml(text))
    assert "\n" not in str(info.value)


CLI_CASES = [c for c in REFUSED if c[0].startswith(("exact_quantile_max_row", "duckdb_threads = -3",
                                                     "[drift]\nnumeric_methd", "[alerts]\nwebhook ="))]


@pytest.mark.parametrize(("text", "message"), CLI_CASES)
def test_the_command_line_prints_one_line_and_exits_2(toml, capsys, sample_logs, text, message):
    code = main(["stats", "--logs", str(sample_logs), "--config", toml(text), "--start", "2026-11-05",
                 "--end", "2026-11-06"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ")


# (file text, what the warning says): a table no module declares is kept aside, not fatal.
WARNED = [
    ("[slos]\np95 = 1", r"\[slos\] \(did you mean 'slo'\?\)"),
    ("[dirft]\nchunk = 'day'", r"\[dirft\] \(did you mean 'drift'\?\)"),
    ("[mystery]\nx = 1", r"\[mystery\]; it is ignored"),
]


@pytest.mark.parametrize(("text", "message"), WARNED)
def test_an_unknown_table_is_a_warning_with_did_you_mean(toml, text, message):
    import re

    cfg = load_config(toml(text))
    assert len(cfg.warnings) == 1 and re.search(message, cfg.warnings[0])


def test_the_command_line_prints_the_warning_and_goes_on(toml, capsys, sample_logs):
    code = main(["stats", "--logs", str(sample_logs), "--config", toml("[slos]\np95 = 1"),
                 "--start", "2026-11-05", "--end", "2026-11-06", "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0 and "warning:" in captured.err and "did you mean 'slo'" in captured.err
    assert '"rows"' in captured.out


ACCEPTED = [
    ("", {}),
    ("duckdb_threads = 2\nrefresh_seconds = 5", {"duckdb_threads": 2, "refresh_seconds": 5}),
    ("exact_quantile_max_rows = 2e6", {"exact_quantile_max_rows": 2_000_000}),   # an integral float
    ("[slo]\np95_latency_ms = 1500\ngap_min_minutes = 3", {"slo.p95_latency_ms": 1500.0, "slo.gap_min_minutes": 3}),
    ('[columns]\nrequest_id = "id"\nfeatures = ["a", "b"]', {"columns": {"request_id": "id"}, "features": ("a", "b")}),
    ('[drift]\nchunk = "week"\n[drift.features.age]\nmethod = "psi"', {}),
    ('[alerts]\nwebhooks = "https://hooks.example.com/x"\n[alerts.rules.gap]\nmin_minutes = 30', {}),
]


@pytest.mark.parametrize(("text", "expected"), ACCEPTED)
def test_valid_settings_load_with_their_types(toml, text, expected):
    cfg = load_config(toml(text))
    assert cfg.warnings == ()
    for key, value in expected.items():
        got = getattr(cfg.slo, key[4:]) if key.startswith("slo.") else getattr(cfg, key)
        assert got == value and type(got) is type(value)


ENV = [
    ({"MONITORING_REFRESH_SECONDS": "abc"}, r"MONITORING_REFRESH_SECONDS \(setting refresh_seconds\) must be a whole number"),
    ({"MONITORING_REFRESH_SECONDS": "0"}, r"must be between 1 and 86400"),
]


@pytest.mark.parametrize(("env", "message"), ENV)
def test_environment_values_are_checked_too(monkeypatch, env, message):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError, match=message):
        load_config()


def test_an_unknown_override_gets_did_you_mean():
    with pytest.raises(ConfigError, match=r"unknown setting 'log' \(did you mean 'logs'\?\)"):
        load_config(overrides={"log": "x"})


def test_a_module_declares_its_section_once_and_gets_the_same_checks(toml, monkeypatch):
    """What a new section ([labels], [quality], ...) does: register keys with defaults, help and
    ranges, plus an optional deeper check; load_config refuses typos and bad values in it."""
    seen = []
    monkeypatch.setitem(SECTIONS, "example", None)
    register_section("example", (Setting("window_days", 7, "Days per window.", check=at_least(1)),
                                 Setting("name", None, "A name.")),
                     check=lambda table: seen.append(dict(table)))
    monkeypatch.setitem(SECTION_OWNERS, "example", "tests.test_config")
    cfg = load_config(toml("[example]\nwindow_days = 3"))
    assert cfg.section("example") == {"window_days": 3} and seen == [{"window_days": 3}]
    with pytest.raises(ConfigError, match=r"\[example\] unknown key 'window_day' \(did you mean 'window_days'\?\)"):
        load_config(toml("[example]\nwindow_day = 3"))
    with pytest.raises(ConfigError, match=r"\[example\] window_days must be at least 1, got 0"):
        load_config(toml("[example]\nwindow_days = 0"))
    with pytest.raises(ConfigError, match=r"\[example\] name must be text"):
        load_config(toml("[example]\nname = 3"))


def test_every_declared_section_has_help_for_every_key():
    for name in SECTION_OWNERS:
        from monitoring.config import section_for

        section = section_for(name)
        assert section is not None, name
        assert all(s.help.strip() for s in section.settings), name


ALL_PAGES = ["pages/overview.py", "pages/latency.py", "pages/errors.py", "pages/throughput.py",
             "pages/drift.py", "pages/summary.py", "pages/alerts.py", "pages/review.py", "pages/queues.py"]


@pytest.mark.parametrize("text", ["duckdb_threads = -3", "[drift]\nspeed = 3", "exact_quantile_max_row = 5"])
@pytest.mark.parametrize("page", ALL_PAGES)
def test_every_page_explains_a_bad_setting_in_one_sentence(app_env, sample_logs, toml, text, page):
    at = app_env(sample_logs, MONITORING_CONFIG=toml(text))
    at.run()
    if page != "pages/overview.py":
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    errors = " ".join(e.value for e in at.error)
    assert "configuration" in errors.lower() and ("did you mean" in errors or "between 0 and 1024" in errors
                                                  or "speed" in errors)
