"""Queues: create review queues from the logs, watch progress, read the results, export."""

import streamlit as st

from monitoring.labelling import queue_report
from ui import guard, labelling, sidebar

st.title("Queues")
view = sidebar.current()
eng = labelling.engine()
if eng is None:
    st.stop()

with st.expander("New queue", expanded=not labelling.queues.list_queues(eng), icon=":material/add:"):
    labelling.create_form(eng, view)
listed = labelling.queues.list_queues(eng)      # after the form: a new queue is listed
q = labelling.pick_queue(eng, key="lead_queue", listed=listed)
if q is None:
    st.info("No queue yet: create one above. Reviewers then label it on the Review page.")
    st.stop()

report = queue_report(eng, q["id"])
st.caption(f"Created {q['created_at']:%Y-%m-%d %H:%M} UTC · {report['strategy']}"
           + (f" by {labelling.md(report['stratify_by'])}" if report["stratify_by"] else "")
           + f" · seed {report['seed']} · drawn from {report['population']:,} eligible requests"
           + f" · {report['status']}")
live = st.toggle("Refresh every 10 s", key="live_progress")
st.fragment(run_every=10 if live else None)(
    guard.guarded(lambda: labelling.progress_panel(queue_report(eng, q["id"]))))()

tabs = st.tabs(["Results", "Agreement", "Trend", "Export", "All queues"])
with tabs[0]:
    labelling.results_panel(eng, report)
with tabs[1]:
    labelling.agreement_panel(report)
with tabs[2]:
    labelling.trend_panel(eng)
with tabs[3]:
    labelling.export_panel(eng, q["id"])
with tabs[4]:
    labelling.queue_table(listed)
    labelling.close_toggle(eng, q)
