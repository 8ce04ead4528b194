"""Review: one item at a time. Name yourself, answer with the keyboard, see your progress.

Shortcuts: Y correct · N wrong · 1-9 wrong with that label · U unsure · S skip · F flag ·
Z undo the last answer. Each item is yours under a lease until you answer or skip it.
"""

import streamlit as st

from monitoring.labelling import progress
from ui import auth, labelling, sidebar

st.title("Review")
sidebar.current()  # keeps the shared filters alive across pages; reviewing needs no logs
auth.require_page("label")
eng = labelling.engine()
if eng is None:
    st.stop()

top = st.columns([2, 1])
with top[0]:
    q = labelling.pick_queue(eng, key="review_queue", open_only=True)
with top[1]:
    reviewer = labelling.reviewer_name()
if q is None:
    st.info("No open queue yet. A lead creates one on the Queues page.")
    st.stop()
if reviewer is None:
    st.info("Type your name to start. Every answer is recorded under it.")
    st.stop()

labelling.show_message()
item = labelling.claim(eng, q["id"], reviewer)
labelling.progress_strip(progress(eng, q["id"], reviewer))
if item is None:
    labelling.nothing_left(progress(eng, q["id"], reviewer), q["id"])
    st.stop()

with st.container(border=True):
    labelling.item_card(item, q)
labelling.answer_bar(eng, item, q, reviewer)
st.caption("Keyboard: **Y** correct · **N** wrong · **1–9** wrong, with that label · **U** unsure · "
           "**S** skip · **F** flag · **Z** undo. Shortcuts pause while you type in a field.")
