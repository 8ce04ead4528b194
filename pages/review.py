"""Review: one item at a time. Name yourself, answer with the keyboard, see your progress.

Shortcuts: Y correct · N wrong · 1-9 the true label (fixed per queue) · U unsure · S skip ·
F flag · Z undo the last answer. Each item is yours under a lease until you answer or skip
it; a reload keeps the reviewer, the queue and the item.
"""

import streamlit as st

from ui import auth, labelling, review, sidebar

st.title("Review")
sidebar.current()  # keeps the shared filters alive across pages; reviewing needs no logs
auth.require_page("label")
eng = labelling.engine()
if eng is None:
    st.stop()

top = st.columns([2, 1])
with top[0]:
    q = labelling.pick_queue(eng, key="review_queue", open_only=True, url_param="queue")
with top[1]:
    reviewer = review.reviewer_name()
if q is None:
    st.info("No open queue yet. A lead creates one on the Queues page.")
    st.stop()
if reviewer is None:
    st.info("Type your name to start. Every answer is recorded under it.")
    st.stop()

review.session(eng, q, reviewer)
