"""Glue of the Compare and Models pages: cached calls into monitoring.compare, and the
tables they show (strings formatted once, here). What reads labels (the comparison, the
fleet's production accuracy) is keyed by the labels mark too (ui.data.labels_mark)."""

from __future__ import annotations

from dataclasses import replace

import polars as pl
import streamlit as st

from monitoring.compare import queries as cq
from monitoring.compare.report import CompareResult, compare
from monitoring.compare.verdict import MetricResult
from monitoring.compare.versions import Fleet, fleet
from monitoring.compare.wording import interval_text, signed, value_text
from monitoring.fmt import md
from monitoring.logs.workspace import Workspace
from monitoring.query.filters import Filters

from .data import TTL, labels_mark

METHOD = (
    "**Method.** Each difference is *candidate − baseline* with an always-valid interval: a "
    "normal-mixture confidence sequence (mixture SPRT, Johari et al. 2017), so it may be read at "
    "every look while traffic accumulates, hourly or more often, without raising false alarms. "
    "Rates use Newcombe's hybrid score interval (Wilson per version), percentiles exact "
    "order-statistic intervals, both combined by MOVER; means use normal intervals. A guarded "
    "metric (monitoring.toml `[compare]`) *breaches* when the whole interval of the change lies "
    "beyond its tolerance; Holm's step-down procedure across the guarded metrics keeps the chance "
    "of a false rollback at 5%. Other metrics are shown at 95% each. Details: docs/compare.md."
)
VERDICT_BOX = {"worse": "error", "not_enough_data": "warning", "better": "success", "no_difference": "info"}


def scope(f: Filters) -> Filters:
    """The sidebar's window and filters, without its version choice (the page picks two)."""
    return replace(f, model_versions=())


@st.cache_data(ttl=TTL, show_spinner=False)
def traffic(_ws: Workspace, fingerprint: str, f: Filters) -> pl.DataFrame:
    return cq.version_traffic(_ws, f)


def result(ws: Workspace, fingerprint: str, baseline: str, candidate: str, f: Filters) -> CompareResult:
    """The comparison for the logs and the labels as they are now (labelled accuracy)."""
    return _result(ws, fingerprint, labels_mark(ws), baseline, candidate, f)


@st.cache_data(ttl=TTL, show_spinner="Comparing the versions…")
def _result(_ws: Workspace, fingerprint: str, mark: str, baseline: str, candidate: str, f: Filters) -> CompareResult:
    return compare(_ws, baseline, candidate, f=f)


@st.cache_data(ttl=TTL, show_spinner=False)
def distributions(_ws: Workspace, fingerprint: str, baseline: str, candidate: str, f: Filters,
                  start, end) -> dict[str, pl.DataFrame]:
    return cq.distributions(_ws, (baseline, candidate), replace(f, start=start, end=end))


def models(ws: Workspace, fingerprint: str) -> Fleet:
    """The registry beside production figures (labelled accuracy: the labels now)."""
    return _models(ws, fingerprint, labels_mark(ws))


@st.cache_data(ttl=TTL, show_spinner="Reading the registry and production figures…")
def _models(_ws: Workspace, fingerprint: str, mark: str) -> Fleet:
    return fleet(_ws)


def metric_rows(ms: list[MetricResult]) -> list[dict]:
    out = []
    for m in ms:
        ci = "–" if m.ci is None or m.difference is None else interval_text(m.kind, m.difference, m.ci)
        diff = "–" if m.difference is None else signed(m.kind, m.difference)
        out.append({"metric": m.label, "baseline": value_text(m.kind, m.baseline), "candidate": value_text(m.kind, m.candidate),
                    "difference": diff, "95% interval": ci,
                    "tolerance": m.tolerance.text if m.tolerance else "not guarded",
                    "judgement": _judgement(m)})
    return out


def _judgement(m: MetricResult) -> str:
    if m.difference is None:
        return "no data"
    if m.guarded and m.worse:
        return "BREACH: worse beyond tolerance"
    if m.guarded and not m.decided:
        return "undecided: more traffic needed"
    if m.worse:
        return "significantly worse"
    if m.better:
        return "significantly better"
    return "significant" if m.significant else "no significant difference"


def error_type_rows(r: CompareResult) -> list[dict]:
    c = r.comparison
    a, b = r.stats[c.baseline], r.stats[c.candidate]
    kinds = sorted(set(a.error_types) | set(b.error_types))
    return [{"error type": k, f"{c.baseline} (baseline)": f"{a.error_types.get(k, 0) / max(a.requests, 1):.3%}",
             f"{c.candidate} (candidate)": f"{b.error_types.get(k, 0) / max(b.requests, 1):.3%}"} for k in kinds]


def registry_rows(f: Fleet) -> list[dict]:
    out = []
    for r in f.rows:
        e = r.entry
        prod = "no labels" if r.accuracy is None else \
            f"{r.accuracy:.1%} ± {(r.accuracy_ci[1] - r.accuracy_ci[0]) / 2:.1%} ({r.labelled:,} labelled)"
        out.append({"version": r.version, "status": r.status, "days in production": None if r.days is None else round(r.days, 1),
                    "requests": r.requests, "validation accuracy": "–" if r.validation_accuracy is None
                    else f"{r.validation_accuracy:.1%}", "production accuracy (95%)": prod,
                    "disagree": "⚠ yes" if r.disagree else "", "trained": f"{e.trained:%Y-%m-%d}" if e else "",
                    "deployed": f"{e.deployed:%Y-%m-%d}" if e else "",
                    "retired": f"{e.retired:%Y-%m-%d}" if e and e.retired else "",
                    "training data": e.training_data if e else "not registered",
                    "commit": e.code_commit if e else "", "owner": e.owner if e else "", "note": r.note})
    return out


def entry_markdown(f: Fleet, version: str) -> str:
    row = next((r for r in f.rows if r.version == version), None)
    e = row.entry if row else next((x for x in f.not_served if x.version == version), None)
    if e is None:
        return f"{md(version)} is not in the registry."
    hyper = ", ".join(f"{md(k)} = {md(v)}" for k, v in e.hyperparameters.items()) or "none recorded"
    val = ", ".join(f"{md(k)} = {md(f'{v:g}')}" for k, v in e.validation.items())
    return (f"**{md(e.version)}** · model {md(e.model or '–')} · owner {md(e.owner)}  \n"
            f"trained {e.trained:%Y-%m-%d} on {md(e.training_data)} · commit {md(e.code_commit)}  \n"
            f"deployed {e.deployed:%Y-%m-%d}" + (f", retired {e.retired:%Y-%m-%d}" if e.retired else "") + "  \n"
            f"hyperparameters: {hyper}  \nvalidation: {val}" + (f"  \nnotes: {md(e.notes)}" if e.notes else ""))
