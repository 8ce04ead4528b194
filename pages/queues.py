"""Queues: create review queues from the logs, watch progress, read the results, export."""

import streamlit as st

from ui import flash, labelling, queues, sidebar

st.title("Queues")
flash.show()          # the confirmation of the last action (create, close, export)
view = sidebar.current()
eng = labelling.engine()
if eng is None:
    st.stop()

listed = labelling.queues.list_queues(eng)
with st.expander("New queue", expanded=not listed, icon=":material/add:"):
    queues.create_form(eng, view)
q = labelling.pick_queue(eng, key="lead_queue", listed=listed)
if q is None:
    st.info("No queue yet: create one above. Reviewers then label it on the Review page.")
    st.stop()

st.caption(f"Created {q['created_at']:%Y-%m-%d %H:%M} UTC · {q['strategy']}"
           + (f" by {labelling.md(q['stratify_by'])}" if q["stratify_by"] else "")
           + f" · seed {q['seed']} · drawn from {q['population']:,} eligible requests · {q['status']}")
live = st.toggle("Refresh every 10 s", key="live_progress",
                 help="Progress, accuracy and agreement refresh together, from one snapshot.")
queues.live_report(eng, q["id"], 10 if live else None)
