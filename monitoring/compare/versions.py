"""Every version's registry entry beside what production shows: traffic, days served, status
inferred from traffic, and labelled production accuracy against validation accuracy.

Status: a version without requests in the logs' last `ACTIVE_HOURS` is *retired*; of the
others, the one with most traffic there is *active*, and a newer one is a *canary* (an
older one still serving is *active*, being drained).

Disagreement: with the validation set's size (`validation.rows`), Newcombe's 95% interval of
production minus validation accuracy must exclude zero; without it, the validation figure
must lie outside production's 95% Wilson interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from ..logs.workspace import Workspace
from ..quality import ground_truth
from ..query.filters import Filters
from . import stats
from .labelled import labelled_by_version
from .queries import version_traffic
from .registry import ModelEntry, NoRegistry, RegistryError, load_registry
from .settings import load_compare_settings

ACTIVE_HOURS = 24
Z95 = 1.959963984540054


@dataclass
class VersionRow:
    version: str
    status: str                       # active | canary | retired
    requests: int
    first: datetime | None
    last: datetime | None
    days: float | None                # None for logs without timestamps
    share_recent: float               # share of the last ACTIVE_HOURS' traffic
    entry: ModelEntry | None
    validation_accuracy: float | None
    accuracy: float | None            # labelled production accuracy
    accuracy_ci: tuple[float, float] | None
    labelled: int
    disagree: bool
    note: str

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "status": self.status, "requests": self.requests, "first_seen": self.first,
                "last_seen": self.last, "days_in_production": None if self.days is None else round(self.days, 2),
                "share_last_24h": self.share_recent, "validation_accuracy": self.validation_accuracy,
                "production_accuracy": self.accuracy,
                "production_accuracy_ci": list(self.accuracy_ci) if self.accuracy_ci else None,
                "labelled": self.labelled, "disagree": self.disagree, "note": self.note,
                "registered": self.entry is not None}


@dataclass
class Fleet:
    path: str
    rows: list[VersionRow]
    unregistered: list[str]           # in the logs, not in the registry
    not_served: list[ModelEntry]      # in the registry, not in the logs
    error: str | None = None          # the registry's one-sentence problem, if any
    absent: bool = False              # no registry file at all (optional: not an error)


def _statuses(traffic: pl.DataFrame, recent: pl.DataFrame) -> dict[str, tuple[str, float]]:
    total = float(recent["requests"].sum() or 0)
    shares = {r["version"]: r["requests"] / total for r in recent.iter_rows(named=True)} if total else {}
    first = {r["version"]: r["first"] for r in traffic.iter_rows(named=True)}
    main = max(shares, key=lambda v: (shares[v], first[v])) if shares else None
    out = {}
    for v in first:
        if v not in shares:
            out[v] = ("retired", 0.0)
        elif v == main or first[v] is None or first[v] <= first[main]:
            out[v] = ("active", shares[v])
        else:
            out[v] = ("canary", shares[v])
    return out


def _disagree(val: float | None, rows: float | None, k: int, n: int) -> tuple[bool, str]:
    if val is None or n == 0:
        return False, "" if val is not None else "no validation accuracy in the registry"
    if rows:
        lo, hi = stats.newcombe(round(val * rows), int(rows), k, n, Z95)
        off = lo > 0 or hi < 0
        return off, (f"production minus validation: {lo:+.1%} to {hi:+.1%} (95%)" if off else "")
    lo, hi = stats.wilson(k, n, Z95)
    return not lo <= val <= hi, ""


def fleet(ws: Workspace) -> Fleet:
    """The Models page's table; a broken registry still lists the versions (error set)."""
    path = load_compare_settings(ws.config).registry
    entries: dict[str, ModelEntry] = {}
    error, absent = None, False
    try:
        entries = load_registry(path)
    except NoRegistry:
        absent = True
    except RegistryError as exc:
        error = str(exc)
    traffic = version_traffic(ws)
    if traffic.height == 0:
        return Fleet(path, [], [], list(entries.values()), error, absent)
    last = traffic["last"].max()
    # Without timestamps every version counts as serving: no "last day" to look at.
    recent = version_traffic(ws, Filters(start=last - timedelta(hours=ACTIVE_HOURS))) if last else traffic
    status = _statuses(traffic, recent)
    reviewed = ground_truth.reviewed_labels(ws.config.database_url)
    labelled = labelled_by_version(ws, Filters(), reviewed) if ground_truth.available(ws, reviewed) else {}
    rows = []
    for r in traffic.iter_rows(named=True):
        v = r["version"]
        e = entries.get(v)
        n, k = labelled.get(v, (0, 0))
        val = e.validation.get("accuracy") if e else None
        off, why = _disagree(val, e.validation.get("rows") if e else None, k, n)
        notes = [why] if why else []
        st, share = status[v]
        if e and e.retired and st != "retired" and last and e.retired < last:
            notes.append(f"the registry says retired on {e.retired:%Y-%m-%d}, but it still serves")
        if e and st == "retired" and not e.retired:
            notes.append("no traffic in the last day, but the registry gives no retirement date")
        rows.append(VersionRow(v, st, int(r["requests"]), r["first"], r["last"],
                               (r["last"] - r["first"]).total_seconds() / 86400 if last else None, share, e, val,
                               k / n if n else None, stats.wilson(k, n, Z95) if n else None, n, off,
                               "; ".join(notes)))
    served = set(traffic["version"].to_list())
    return Fleet(path, rows, [] if absent else [v for v in traffic["version"].to_list() if v not in entries],
                 [e for v, e in entries.items() if v not in served], error, absent)
