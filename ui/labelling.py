"""Streamlit glue for labelling: the cached database engine and the widgets of the Review
and Queues pages. The logic lives in monitoring.labelling; this module only draws it.

Everything that came from the logs or from a reviewer (features, predictions, names,
comments) is shown through st.dataframe or escaped before it reaches Markdown: it is text,
never HTML or formatting.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

import polars as pl
import streamlit as st
from sqlalchemy.engine import Engine

from monitoring.config import load_config
from monitoring.fmt import md, pct
from monitoring.labelling import export, queues, results
from monitoring.labelling.charts import trend_figure
from monitoring.labelling.db import DatabaseError, open_db, safe_url
from monitoring.labelling.queues import FLAG_REASONS, Item, LabellingError, LeaseLost
from monitoring.labelling.sampling import (
    ALLOCATIONS,
    STRATIFY_COLUMNS,
    QueueSpec,
    Segment,
    segment_values,
)

from .sidebar import View

KEYS = {"correct": "Y", "wrong": "N", "unsure": "U", "skip": "S", "undo": "Z", "flag": "F"}


# -- plumbing --------------------------------------------------------------------------------

@st.cache_resource(show_spinner="Opening the labelling database…")
def _engine(url: str) -> Engine:
    return open_db(url)


def engine() -> Engine | None:
    """The process-wide engine for the configured database; explains and returns None on error."""
    try:
        url = load_config().database_url
    except ValueError as exc:
        st.error(f"The configuration cannot be read: {md(exc)}")
        return None
    try:
        return _engine(url)
    except DatabaseError as exc:
        st.error(f"The labelling database is unavailable: {md(exc, limit=600)}")
        st.info(f"Database URL: {md(safe_url(url))}. Set MONITORING_DB_URL to a reachable "
                "sqlite:/// or postgresql:// URL and reload.")
        return None


def fmt_pct(v: float | None, digits: int = 1) -> str:
    return pct(v, digits)


def pick_queue(eng: Engine, key: str, *, open_only: bool = False,
               listed: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """A queue selector (newest first); None when there is no queue to show."""
    listed = queues.list_queues(eng) if listed is None else listed
    qs = [q for q in listed if q["status"] == "open" or not open_only]
    if not qs:
        return None
    by_id = {q["id"]: q for q in qs}
    chosen = st.selectbox("Queue", list(by_id), key=key,
                          format_func=lambda i: f"#{i} · {by_id[i]['name']} · {by_id[i]['done']}/"
                                                f"{by_id[i]['size']} done")
    return by_id.get(chosen)


# -- review ----------------------------------------------------------------------------------

def _keep_name() -> None:
    st.session_state["reviewer"] = st.session_state.get("reviewer_input", "")


def reviewer_name() -> str | None:
    """The reviewer's name, asked once and remembered in the session.

    Kept under a plain session key: Streamlit drops a widget's own state when a page that
    does not draw it runs, and the name must survive a visit to another page.
    """
    name = st.text_input("Your name", value=st.session_state.get("reviewer", ""),
                         key="reviewer_input", on_change=_keep_name, placeholder="e.g. Ana",
                         help="Recorded with every answer. Remembered while this tab is open.")
    st.session_state["reviewer"] = name
    try:
        return queues.normalize_reviewer(name) if name else None
    except LabellingError as exc:
        st.error(str(exc))
        return None


def progress_strip(p: queues.Progress) -> None:
    """Done, skipped, flagged and left, always at the top of the review."""
    st.progress(p.done / p.size if p.size else 0.0,
                text=f"Done {p.done} · Skipped {p.skipped} · Flagged {p.flagged} · Left {p.left} "
                     f"of {p.size} · You answered {p.mine_done}")


def claim(eng: Engine, queue_id: int, reviewer: str) -> Item | None:
    revisit = st.session_state.get(f"revisit_{queue_id}", False)
    return queues.claim_next(eng, queue_id, reviewer, revisit_skipped=revisit)


def show_message() -> None:
    msg = st.session_state.pop("review_msg", None)
    if msg:
        kind, text = msg
        (st.warning if kind == "warning" else st.toast)(text)


def item_card(item: Item, q: dict[str, Any]) -> None:
    """The request as it was logged: prediction and score large, then the inputs."""
    when = f"{item.ts:%Y-%m-%d %H:%M:%S} UTC" if item.ts else "–"
    st.caption(f"Item {item.position} of {q['size']} · request {md(item.request_id, 80)} · {when}")
    c = st.columns([2, 1, 1])
    c[0].metric("Prediction", md(item.prediction if item.prediction is not None else "–", 80))
    c[1].metric("Score", "–" if item.score is None else f"{item.score:.3f}")
    c[2].metric("Version", md(item.model_version or "–", 40),
                help=f"Endpoint: {md(item.endpoint or '–')}")
    rows = [{"input": k, "value": "–" if v is None else str(v)} for k, v in item.inputs.items()]
    if rows:
        st.dataframe(pl.DataFrame(rows, schema={"input": pl.String, "value": pl.String}),
                     hide_index=True, width="stretch", height=min(38 + 35 * len(rows), 460),
                     key=f"inputs_{item.id}")
    else:
        st.caption("The logs carried no input features for this request.")


def _act(eng: Engine, item: Item, reviewer: str, action: str, label: str | None = None) -> None:
    """Button callback: record the action before the page reruns onto the next item."""
    s = st.session_state
    if s.get("review_last_claim") == item.claim_token:
        return  # a second key press for a claim already finished: nothing to record
    flag = s.get(f"flag_reason_{item.id}") if s.get(f"flag_{item.id}") else None
    comment = s.get(f"comment_{item.id}") or None
    if label is None and action == "wrong":
        label = s.get(f"label_{item.id}") or None
    try:
        if action == "skip":
            queues.skip(eng, item, reviewer, comment=comment)
            s["review_msg"] = ("toast", f"Skipped item {item.position}: it goes back to the pool.")
        elif action == "undo":
            queues.release(eng, item, reviewer)
            back = queues.undo_last(eng, item.queue_id, reviewer)
            s["review_msg"] = ("toast", "Undone: your last answer is superseded; answer it again." if back
                               else "Undone: another reviewer holds that item now.")
        else:
            queues.answer(eng, item, reviewer, action, correct_label=label, flag_reason=flag,
                          comment=comment)
            s["review_msg"] = ("toast", f"Saved: {action}" + (f" → {md(label)}" if label else ""))
        if action != "undo":
            s["review_last_claim"] = item.claim_token
    except LeaseLost as exc:
        s["review_msg"] = ("warning", str(exc))
    except LabellingError as exc:
        s["review_msg"] = ("warning", str(exc))


def _toggle_flag(item_id: int) -> None:
    st.session_state[f"flag_{item_id}"] = not st.session_state.get(f"flag_{item_id}", False)


def answer_bar(eng: Engine, item: Item, q: dict[str, Any], reviewer: str) -> None:
    """Answer buttons with their keyboard shortcuts, the correct label, flag and comment."""
    args = (eng, item, reviewer)
    c = st.columns(3)
    c[0].button("Correct", key="answer_correct", shortcut=KEYS["correct"], type="primary",
                icon=":material/check:", width="stretch", on_click=_act, args=(*args, "correct"))
    c[1].button("Wrong", key="answer_wrong", shortcut=KEYS["wrong"], icon=":material/close:",
                width="stretch", on_click=_act, args=(*args, "wrong"),
                help="Wrong; adds the correct label typed below, if any.")
    c[2].button("Unsure", key="answer_unsure", shortcut=KEYS["unsure"], icon=":material/help:",
                width="stretch", on_click=_act, args=(*args, "unsure"))
    classes = [k for k in (q["classes"] or []) if k != item.prediction]
    if classes:
        st.caption("Wrong, and the correct label is:")
        cols = st.columns(min(len(classes), 5))
        for i, label in enumerate(classes):
            cols[i % len(cols)].button(md(label, 40), key=f"answer_wrong_as_{i}",
                                       shortcut=str(i + 1) if i < 9 else None, width="stretch",
                                       on_click=_act, args=(*args, "wrong", label))
    else:
        st.text_input("Correct label (optional, goes with Wrong)", key=f"label_{item.id}")
    c = st.columns([1, 1, 2])
    flagged = st.session_state.get(f"flag_{item.id}", False)
    c[0].button("Unflag" if flagged else "Flag", key="flag", shortcut=KEYS["flag"],
                icon=":material/flag:", width="stretch", on_click=_toggle_flag, args=(item.id,))
    c[1].button("Skip", key="skip", shortcut=KEYS["skip"], icon=":material/skip_next:",
                width="stretch", on_click=_act, args=(*args, "skip"))
    c[2].button("Undo last answer", key="undo", shortcut=KEYS["undo"], icon=":material/undo:",
                width="stretch", on_click=_act, args=(*args, "undo"))
    if flagged:
        st.selectbox("Why flag it?", FLAG_REASONS, key=f"flag_reason_{item.id}")
    st.text_input("Comment (optional)", key=f"comment_{item.id}",
                  placeholder="Anything the lead should know about this request")


def _revisit(queue_id: int) -> None:
    st.session_state[f"revisit_{queue_id}"] = True


def nothing_left(p: queues.Progress, queue_id: int) -> None:
    if p.left == 0:
        st.success(f"All {p.size} items of this queue are done. Thank you!")
        return
    if p.mine_skipped:
        st.info(f"Only items you skipped are left for you ({p.mine_skipped}).")
        st.button("Review the items I skipped", key="revisit", on_click=_revisit, args=(queue_id,))
        return
    st.info(f"Nothing free for you right now: {p.in_progress} item(s) are with other reviewers "
            "(they come back if their lease runs out), and calibration items you answered wait "
            "for a second reviewer.")
    st.button("Check again", key="check_again")


# -- queues (lead) ---------------------------------------------------------------------------

def create_form(eng: Engine, view: View | None) -> None:
    """Create a queue from the sidebar's window and filters."""
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
    kind, text = st.session_state.pop("q_result", (None, None))
    if kind == "ok":
        st.success(text)
    elif kind == "error":
        st.error(text)


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
    try:
        qid = queues.create_queue(eng, view.ws.source, view.ws.con, spec,
                                  created_by=s.get("reviewer") or "")
    except ValueError as exc:
        s["q_result"] = ("error", str(exc))
        return
    s["lead_queue"] = qid
    notes = queues.get_queue(eng, qid)["settings"].get("notes") or []
    s["q_result"] = ("ok", f"Queue #{qid} created. Reviewers find it on the Review page."
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


def results_panel(eng: Engine, r: dict[str, Any]) -> None:
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
    flagged = results.resolved_frame(eng, r["id"]).filter(pl.col("flagged"))
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
    st.caption("Resolved labels: one row per answered item (majority verdict, ties marked). "
               "Events: every answer, skip and undo, in order, the audit trail.")
    for kind in export.KINDS:
        c = st.columns(len(export.FORMATS))
        for col, (fmt, mime) in zip(c, export.FORMATS.items(), strict=True):
            col.download_button(f"{'Labels' if kind == 'labels' else 'Events'} · {fmt}",
                                data=partial(export.export_bytes, eng, queue_id, kind, fmt),
                                file_name=export.file_name(queue_id, kind, fmt), mime=mime,
                                on_click="ignore",
                                key=f"dl_{kind}_{fmt}", icon=":material/download:", width="stretch")


def close_toggle(eng: Engine, q: dict[str, Any]) -> None:
    closed = q["status"] == "closed"
    st.button("Reopen queue" if closed else "Close queue", key="close_queue",
              help="A closed queue hands out no more items; answers stay.",
              on_click=queues.set_status, args=(eng, q["id"], "open" if closed else "closed"))
