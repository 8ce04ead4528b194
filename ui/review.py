"""The Review page's widgets: the reviewer, the item they hold, and the answer keys.

Keys never change meaning: each label value of a queue has its number (1-9, in the queue's
own order of classes, fixed when the queue was made); the predicted value is highlighted,
never moved. A key press records the answer and claims the next item in one short
transaction (monitoring.labelling.answer_and_next); the next item is kept in session state,
so the rerun draws it without asking the database again. The reviewer and the queue are in
the URL, and the database re-attaches the claim a reviewer holds: a reload shows the same
item, nothing is left "in progress".
"""

from __future__ import annotations

import time
from typing import Any

import polars as pl
import streamlit as st
from sqlalchemy.engine import Engine

from monitoring.fmt import md, value
from monitoring.labelling import progress, queues
from monitoring.labelling.records import FLAG_REASONS, Item, LabellingError, LeaseLost

from . import auth

KEYS = {"correct": "Y", "wrong": "N", "unsure": "U", "skip": "S", "undo": "Z", "flag": "F"}
MAX_KEYED = 9   # label values 1-9 have a key; more have buttons only
RENEW_S = 30    # a held item whose lease ends sooner than this is claimed again (renewed)


def _keep_name() -> None:
    st.session_state["reviewer"] = st.session_state.get("reviewer_input", "")


def reviewer_name() -> str | None:
    """The reviewer's name, asked once and kept in the session and the URL (?reviewer=).

    Kept under a plain session key: Streamlit drops a widget's own state when a page that
    does not draw it runs, and the name must survive a visit to another page. Signed in,
    there is nothing to type: answers carry the user's own name.
    """
    me = auth.actor()
    if me is not None and me.authenticated:
        st.caption(f"Reviewing as **{md(me.name)}** ({me.role}); every answer is recorded under it.")
        return me.name
    s = st.session_state
    if not s.get("reviewer") and st.query_params.get("reviewer"):
        s["reviewer"] = st.query_params["reviewer"]       # a reload keeps the reviewer
    name = st.text_input("Your name", value=s.get("reviewer", ""),
                         key="reviewer_input", on_change=_keep_name, placeholder="e.g. Ana",
                         help="Recorded with every answer. Kept in the page's address (reload-safe).")
    s["reviewer"] = name
    try:
        clean = queues.normalize_reviewer(name) if name else None
    except LabellingError as exc:
        st.error(str(exc))
        return None
    if clean and st.query_params.get("reviewer") != clean:
        st.query_params["reviewer"] = clean
    return clean


def label_keys(classes: list[str] | None) -> list[tuple[str | None, str]]:
    """(key, label value) for each of the queue's classes, in the queue's fixed order."""
    return [(str(i + 1) if i < MAX_KEYED else None, c) for i, c in enumerate(classes or [])]


def _held_key(queue_id: int) -> str:
    return f"review_held_{queue_id}"


def held_item(eng: Engine, q: dict[str, Any], reviewer: str) -> Item | None:
    """The item the reviewer holds: the one handed out with their last answer (no query),
    else claimed now (their unfinished claim first, so a reload gets the same item)."""
    s = st.session_state
    held = s.get(_held_key(q["id"]))
    if held is not None and held[0] == reviewer and held[1] is not None \
            and held[1].lease_until > time.time() + RENEW_S:
        return held[1]
    revisit = s.get(f"revisit_{q['id']}", False)
    item = queues.claim_next(eng, q["id"], reviewer, revisit_skipped=revisit, actor=auth.actor())
    s[_held_key(q["id"])] = (reviewer, item)
    return item


def show_message() -> None:
    msg = st.session_state.pop("review_msg", None)
    if msg:
        kind, text = msg
        (st.warning if kind == "warning" else st.toast)(text)


def progress_strip(p: queues.Progress) -> None:
    """Done, skipped, flagged and left, always at the top of the review."""
    st.progress(p.done / p.size if p.size else 0.0,
                text=f"Done {p.done} · Skipped {p.skipped} · Flagged {p.flagged} · Left {p.left} "
                     f"of {p.size} · You answered {p.mine_done}")


def item_card(item: Item, q: dict[str, Any]) -> None:
    """The request as it was logged: prediction and score large, then the inputs, every
    value formatted for people (monitoring.fmt.value) and shown as text."""
    when = value(item.ts) if item.ts else "–"
    st.caption(f"Item {item.position} of {q['size']} · request {md(item.request_id, 80)} · {md(when)}")
    c = st.columns([2, 1, 1])
    numeric = not q["classes"]     # a numeric prediction, stored as text
    c[0].metric("Prediction", md(value(item.prediction, numeric_text=numeric), 80))
    c[1].metric("Score", "–" if item.score is None else md(value(item.score)))
    c[2].metric("Version", md(item.model_version or "–", 40),
                help=f"Endpoint: {md(item.endpoint or '–')}")
    rows = [{"input": k, "value": value(v)} for k, v in item.inputs.items()]
    if rows:
        st.dataframe(pl.DataFrame(rows, schema={"input": pl.String, "value": pl.String}),
                     hide_index=True, width="stretch", height=min(38 + 35 * len(rows), 460),
                     key="review_inputs")   # one grid, new rows: no remount per item
    else:
        st.caption("The logs carried no input features for this request.")


def _act(eng: Engine, item: Item, reviewer: str, action: str, label: str | None = None) -> None:
    """Button callback: record the action and take the next item, before the rerun draws it."""
    s = st.session_state
    if s.get("review_last_claim") == item.claim_token:
        return  # a second key press for a claim already finished: nothing to record
    flag = s.get(f"flag_reason_{item.id}") if s.get(f"flag_{item.id}") else None
    comment = s.get(f"comment_{item.id}") or None
    if label is None and action == "wrong":
        label = s.get(f"label_{item.id}") or None
    if action == "wrong" and label is not None and label == item.prediction:
        action, label = "correct", None            # the predicted value's own key
    revisit = s.get(f"revisit_{item.queue_id}", False)
    held = _held_key(item.queue_id)
    try:
        me = auth.acting()
        if action == "skip":
            _, nxt = queues.skip_and_next(eng, item, reviewer, comment=comment, revisit_skipped=revisit,
                                          actor=me)
            s["review_msg"] = ("toast", f"Skipped item {item.position}: it goes back to the pool.")
        elif action == "undo":
            nxt = queues.undo_last(eng, item.queue_id, reviewer, actor=me)
            if nxt is not None and nxt.id != item.id:
                queues.release(eng, item, reviewer, actor=me)
            s["review_msg"] = ("toast", "Undone: your last answer is superseded; answer it again." if nxt
                               else "Undone: another reviewer holds that item now.")
        else:
            _, nxt = queues.answer_and_next(eng, item, reviewer, action, correct_label=label,
                                            flag_reason=flag, comment=comment, revisit_skipped=revisit,
                                            actor=me)
            s["review_msg"] = ("toast", f"Saved: {action}" + (f" → {md(label)}" if label else ""))
        if action != "undo":
            s["review_last_claim"] = item.claim_token
        s[held] = (reviewer, nxt) if nxt is not None else None
    except (LeaseLost, LabellingError, auth.PermissionDenied) as exc:
        s["review_msg"] = ("warning", str(exc))
        s[held] = None                              # ask the database what is held now


def _toggle_flag(item_id: int) -> None:
    st.session_state[f"flag_{item_id}"] = not st.session_state.get(f"flag_{item_id}", False)


def answer_bar(eng: Engine, item: Item, q: dict[str, Any], reviewer: str) -> None:
    """Answer buttons with their keyboard shortcuts, a key per label value, flag and comment."""
    args = (eng, item, reviewer)
    c = st.columns(3)
    c[0].button("Correct", key="answer_correct", shortcut=KEYS["correct"], type="primary",
                icon=":material/check:", width="stretch", on_click=_act, args=(*args, "correct"))
    c[1].button("Wrong", key="answer_wrong", shortcut=KEYS["wrong"], icon=":material/close:",
                width="stretch", on_click=_act, args=(*args, "wrong"),
                help="Wrong; adds the correct label typed below, if any.")
    c[2].button("Unsure", key="answer_unsure", shortcut=KEYS["unsure"], icon=":material/help:",
                width="stretch", on_click=_act, args=(*args, "unsure"))
    keyed = label_keys(q["classes"])
    if keyed:
        st.caption("The true label is (the prediction is highlighted; its key means Correct):")
        cols = st.columns(min(len(keyed), 5))
        for i, (key, label) in enumerate(keyed):
            predicted = label == item.prediction
            # Streamlit draws the shortcut on the button itself ("high  1").
            cols[i % len(cols)].button(md(label, 40) + (" (predicted)" if predicted else ""), key=f"label_key_{i}",
                                       shortcut=key, width="stretch",
                                       type="primary" if predicted else "secondary",
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
    st.session_state[_held_key(queue_id)] = None


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


@st.fragment
def session(eng: Engine, q: dict[str, Any], reviewer: str) -> None:
    """The review itself, as a fragment: a key press reruns only this, not the whole page."""
    show_message()
    item = held_item(eng, q, reviewer)
    p = progress(eng, q["id"], reviewer)
    progress_strip(p)
    if item is None:
        nothing_left(p, q["id"])
        return
    with st.container(border=True):
        item_card(item, q)
    answer_bar(eng, item, q, reviewer)
    st.caption("Keyboard: **Y** correct · **N** wrong · **1–9** the true label (the prediction's own "
               "number means correct) · **U** unsure · **S** skip · **F** flag · **Z** undo. "
               "Shortcuts pause while you type in a field.")
