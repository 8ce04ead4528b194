"""The Queues page's widgets (leads): create a queue, and the live report of one queue, where
progress, accuracy and agreement come from one snapshot (ui.labelling.snapshot) so they
refresh together. Confirmations go through ui.flash, shown at the top of the page."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

import polars as pl
import streamlit as st
from sqlalchemy.engine import Engine

from monitoring.fmt import md
from monitoring.labelling import export, queues, results
from monitoring.labelling.charts import trend_figure
from monitoring.labelling.sampling import (
    ALLOCATIONS,
    STRATIFY_COLUMNS,
    QueueSpec,
    Segment,
    segment_values,
)

from . import auth, flash
from .labelling import fmt_pct, snapshot
from .sidebar import View


def create_form(eng: Engine, view: View | None) -> None:
    """Create a queue from the sidebar's window and filters (leads and admins)."""
    if not auth.can("queue.create"):
        st.info(auth.denied("queue.create"))
        return
    if view is None or not view.extent.rows:
        st.info("Creating a queue needs readable logs (see the sidebar).")
        return
    f = view.filters
    window = (f"{f.start:%Y-%m-%d %H:%M} → {f.end:%Y-%m-%d %H:%M} UTC" if f.start and f.end
              else "the whole log")
    st.caption(f"Window and filters come from the sidebar: {window} · versions: {md(', '.join(f.model_versions) or 'all')}"
               f" · endpoints: {md(', '.join(f.endpoints) or 'all')}")
    c = st.columns(3)
    c[0].number_input("Items", min_value=1, max_value=10_000, value=60, step=10, key="q_size")
    c[1].number_input("Seed", min_value=0, value=int(st.session_state.setdefault(
        "q_seed_default", datetime.now(UTC).microsecond)), key="q_seed",
        help="Same window, settings and seed give the same sample. Recorded with the queue.")
    c[2].number_input("Lease (minutes)", min_value=1, max_value=240, value=10, key="q_lease",
                      help="How long an opened item stays with its reviewer.")
    c = st.columns(3)
    strat = c[0].selectbox("Sampling", ["uniform", *STRATIFY_COLUMNS], key="q_strat",
                           format_func=lambda s: "Uniform random" if s == "uniform" else f"Stratified by {s}")
    c[1].selectbox("Per stratum", ALLOCATIONS, key="q_alloc", disabled=strat == "uniform",
                   help="equal: as many items per stratum; proportional: by traffic share.")
    cal = c[2].slider("Calibration share", 0, 50, 0, step=5, format="%d%%", key="q_cal",
                      help="Share of the random items labelled blind by two reviewers each, to "
                           "measure agreement (20% is a good start with two or more reviewers).")
    if cal:
        st.number_input("Reviewers per calibration item", min_value=2, max_value=5, value=2,
                        key="q_cal_reviewers")
    with st.expander("Targeted quotas (at most half of the queue, reported apart)"):
        c = st.columns(3)
        c[0].number_input("Lowest scores", min_value=0, value=0, key="q_low",
                          help="Items drawn from the lowest 10% of scores.")
        features = [x.name for x in view.ws.source.features]
        seg_col = c[1].selectbox("Drifted segment: column", ["(none)", *features], key="q_seg_col")
        c[2].number_input("Items from the segment", min_value=0, value=0, key="q_seg_n")
        _segment_picker(view, seg_col)
    st.text_input("Name (optional)", key="q_name")
    # A callback, not `if st.button(...)`: it reads the widgets' current values and runs
    # before the page does, so a click is never lost to a rerun.
    st.button("Create queue", key="q_create", type="primary", icon=":material/add:",
              on_click=_create_queue, args=(eng, view))


def _create_queue(eng: Engine, view: View) -> None:
    s = st.session_state
    column = s.get("q_seg_col", "(none)")
    segment = None
    if column != "(none)":
        values = tuple(s.get(f"q_seg_vals_{column}") or ())
        lo, hi = s.get(f"q_seg_lo_{column}"), s.get(f"q_seg_hi_{column}")
        if values:
            segment = Segment(column, values=values)
        elif lo is not None or hi is not None:
            segment = Segment(column, low=lo, high=hi)
    strat = s.get("q_strat", "uniform")
    cal = s.get("q_cal", 0)
    spec = QueueSpec(filters=view.filters, size=int(s.get("q_size", 60)), seed=int(s.get("q_seed", 0)),
                     stratify_by=None if strat == "uniform" else strat,
                     allocation=s.get("q_alloc", "equal"), low_score=int(s.get("q_low", 0)),
                     segments=(segment,) if segment else (),
                     segment_size=int(s.get("q_seg_n", 0)) if segment else 0,
                     calibration_share=cal / 100,
                     calibration_reviewers=int(s.get("q_cal_reviewers", 2)) if cal else 2,
                     lease_seconds=float(s.get("q_lease", 10)) * 60, name=s.get("q_name") or None)
    view.ws.wait()      # a stored queue is drawn from exact logs (monitoring.logs.dupcheck)
    try:
        qid = queues.create_queue(eng, view.ws.source, view.ws.con, spec,
                                  created_by=s.get("reviewer") or "", actor=auth.acting())
    except ValueError as exc:
        flash.say("error", f"No queue created: {md(exc, limit=600)}")
        return
    s["lead_queue"] = qid
    notes = queues.get_queue(eng, qid)["settings"].get("notes") or []
    flash.say("success", f"Queue #{qid} created. Reviewers find it on the Review page."
              + "".join(f" {md(n)}." for n in notes))


def _segment_picker(view: View, column: str) -> None:
    if column == "(none)":
        return
    feature = next(x for x in view.ws.source.features if x.name == column)
    if feature.kind == "categorical":
        values = segment_values(view.ws.source, view.ws.con, column, view.filters)
        st.multiselect("Segment values", values, key=f"q_seg_vals_{column}")
        return
    c = st.columns(2)
    c[0].number_input("From (inclusive)", value=None, key=f"q_seg_lo_{column}")
    c[1].number_input("To (exclusive)", value=None, key=f"q_seg_hi_{column}")


def queue_table(qs: list[dict[str, Any]]) -> None:
    st.dataframe(pl.DataFrame([{k: q[k] for k in ("id", "name", "status", "created_at", "strategy",
                                                  "seed", "size", "done", "skipped", "flagged")}
                               for q in qs]),
                 hide_index=True, width="stretch", key="queue_table")


_PCT = st.column_config.NumberColumn(format="percent")
_ACC_COLS = {"accuracy": _PCT, "ci_low": st.column_config.NumberColumn("95% low", format="percent"),
             "ci_high": st.column_config.NumberColumn("95% high", format="percent"),
             "effective_n": st.column_config.NumberColumn("effective n", format="%.1f")}


def progress_panel(r: dict[str, Any]) -> None:
    c = st.columns(5)
    c[0].metric("Done", f"{r['labelled']} / {r['size']}")
    c[1].metric("Skipped", r["skipped"], help=f"Items skipped and not done yet ({r['skips']} skips in all).")
    c[2].metric("Flagged", r["flagged"])
    c[3].metric("In progress", r["in_progress"])
    c[4].metric("Left", r["left"])
    st.progress(r["labelled"] / r["size"] if r["size"] else 0.0)
    if r["reviewers"]:
        st.markdown("**Reviewers**")
        st.dataframe(pl.DataFrame(r["reviewers"]).drop("first_at"), hide_index=True, width="stretch",
                     column_config={"median_seconds": st.column_config.NumberColumn(format="%.1f s"),
                                    "items_per_hour": st.column_config.NumberColumn(format="%.0f")},
                     key="reviewers_table")


def results_panel(r: dict[str, Any]) -> None:
    if r["accuracy"] is None:
        st.info("No decisive answers yet: accuracy appears after the first correct or wrong answer.")
        return
    lo, hi = r["accuracy_ci"]
    st.metric("Accuracy", fmt_pct(r["accuracy"]), border=True,
              help="Correct / (correct + wrong) over the random part of the sample. "
                   "Unsure answers and ties are left out.")
    design = "" if r["strategy"] == "uniform" else f" (design-weighted, effective n {r['effective_n']:.1f})"
    st.caption(f"95% Wilson interval {fmt_pct(lo)} – {fmt_pct(hi)} · {r['accuracy_n']} decisive items"
               f"{design} · {r['unsure']} unsure · {r['ties']} tied")
    c = st.columns(2)
    c[0].markdown("**By version**")
    c[0].dataframe(pl.DataFrame(r["by_version"]), hide_index=True, column_config=_ACC_COLS, key="acc_v")
    c[1].markdown("**By predicted class**")
    c[1].dataframe(pl.DataFrame(r["by_class"]), hide_index=True, column_config=_ACC_COLS, key="acc_c")
    if r["class_scores"]:
        st.markdown("**Precision, recall and F1** (items whose true label is known)")
        st.dataframe(pl.DataFrame(r["class_scores"]), hide_index=True, key="prf",
                     column_config={k: st.column_config.NumberColumn(format="%.3f")
                                    for k in ("precision", "recall", "f1")})
    if r["targeted"]:
        st.markdown("**Targeted items** (chosen to find errors; not in the estimates above)")
        st.dataframe(pl.DataFrame(r["targeted"]), hide_index=True, column_config=_ACC_COLS, key="tgt")
    flagged = r["flagged_items"]
    if flagged.height:
        st.markdown("**Flagged items**")
        st.dataframe(flagged.select("position", "request_id", "prediction", "verdict", "label",
                                    "flag_reasons", "comments", "reviewers"),
                     hide_index=True, width="stretch", key="flagged")


def agreement_panel(r: dict[str, Any]) -> None:
    a = r["agreement"]
    share = r["settings"].get("calibration_share") or 0
    if not share:
        st.info("This queue has no calibration subset. Create one with a calibration share above 0%.")
        return
    if a is None:
        st.info(f"{share:.0%} of the random items are calibration items, each answered blind by "
                f"{r['settings'].get('calibration_reviewers', 2)} reviewers. None has two answers yet.")
        return
    name = "Cohen's kappa" if a["method"] == "cohen_kappa" else "Krippendorff's alpha (nominal)"
    c = st.columns(3)
    c[0].metric(name, "undefined" if a["value"] is None else f"{a['value']:.3f}",
                help="1 = perfect agreement, 0 = what chance gives. Undefined when everyone "
                     "used one answer only.")
    c[1].metric("Raw agreement", fmt_pct(a["percent_agreement"]))
    c[2].metric("Items", a["items"])
    st.caption(f"Reviewers: {md(', '.join(a['reviewers']))} · {a['disagreements']} item(s) with "
               "different answers.")


def trend_panel(eng: Engine) -> None:
    t = results.trend(eng)
    if t.height == 0:
        st.info("The trend appears once queues have decisive answers.")
        return
    st.plotly_chart(trend_figure(t), key="trend_chart")


def export_panel(eng: Engine, queue_id: int) -> None:
    if not auth.can("queue.export"):
        st.info(auth.denied("queue.export"))
        return
    st.caption("Resolved labels: one row per answered item (majority verdict, ties marked). "
               "Events: every answer, skip and undo, in order, the audit trail.")
    for kind in export.KINDS:
        c = st.columns(len(export.FORMATS))
        for col, (fmt, mime) in zip(c, export.FORMATS.items(), strict=True):
            col.download_button(f"{'Labels' if kind == 'labels' else 'Events'} · {fmt}",
                                data=partial(export.export_bytes, eng, queue_id, kind, fmt,
                                             actor=auth.actor()),
                                file_name=export.file_name(queue_id, kind, fmt), mime=mime,
                                on_click=_exported, args=(queue_id, kind, fmt),
                                key=f"dl_{kind}_{fmt}", icon=":material/download:", width="stretch")


def _exported(queue_id: int, kind: str, fmt: str) -> None:
    flash.say("success", f"Exported the {'resolved labels' if kind == 'labels' else 'events'} of queue "
              f"#{queue_id} as {fmt}: {md(export.file_name(queue_id, kind, fmt))} (see your downloads).")


def close_toggle(eng: Engine, q: dict[str, Any]) -> None:
    if not auth.can("queue.close"):
        return
    closed = q["status"] == "closed"
    st.button("Reopen queue" if closed else "Close queue", key="close_queue",
              help="A closed queue hands out no more items; answers stay.",
              on_click=_set_status, args=(eng, q["id"], "open" if closed else "closed"))


def _set_status(eng: Engine, queue_id: int, status: str) -> None:
    try:
        queues.set_status(eng, queue_id, status, actor=auth.acting())
    except ValueError as exc:   # PermissionDenied (role changed, session ended), no such queue
        flash.say("error", f"Queue #{queue_id} is unchanged: {md(exc, limit=600)}")
        return
    flash.say("success", f"Queue #{queue_id} {'closed: it hands out no more items' if status == 'closed' else 'reopened'}.")


def live_report(eng: Engine, queue_id: int, every: int | None) -> None:
    """Progress and every tab of one queue from one snapshot; with `every` (seconds) the
    whole block reruns on its own, and a new answer changes all its figures at once."""
    st.fragment(run_every=every)(_report)(eng, queue_id)


def _report(eng: Engine, queue_id: int) -> None:
    r = snapshot(eng, queue_id)
    progress_panel(r)
    tabs = st.tabs(["Results", "Agreement", "Trend", "Export", "All queues"])
    with tabs[0]:
        results_panel(r)
    with tabs[1]:
        agreement_panel(r)
    with tabs[2]:
        trend_panel(eng)
    with tabs[3]:
        export_panel(eng, queue_id)
    with tabs[4]:
        queue_table(queues.list_queues(eng))
        close_toggle(eng, queues.get_queue(eng, queue_id))
