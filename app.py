"""modelwatch: entry point. Page config and navigation; each page draws the shared sidebar."""

from pathlib import Path

import streamlit as st

from ui import guard, warm
from ui.auth import gate

# A local file: a material or emoji icon makes the browser fetch the favicon from a CDN.
st.set_page_config(page_title="modelwatch", page_icon=str(Path(__file__).parent / "ui" / "favicon.png"),
                   layout="wide")

pages = {
    "Is it fast and up?": [
        st.Page("pages/overview.py", title="Overview", icon=":material/home:", default=True),
        st.Page("pages/latency.py", title="Latency", icon=":material/timer:"),
        st.Page("pages/errors.py", title="Errors", icon=":material/error:"),
        st.Page("pages/throughput.py", title="Throughput", icon=":material/show_chart:"),
    ],
    "Is it still right?": [
        st.Page("pages/review.py", title="Review", icon=":material/fact_check:"),
        st.Page("pages/queues.py", title="Queues", icon=":material/inventory_2:"),
        st.Page("pages/quality.py", title="Quality", icon=":material/verified:"),
    ],
    "Is the world it sees still the one it learned?": [
        st.Page("pages/drift.py", title="Drift", icon=":material/waves:"),
    ],
    "Is the new version better?": [
        st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
        st.Page("pages/models.py", title="Models", icon=":material/inventory:"),
    ],
    "How was the week?": [
        st.Page("pages/summary.py", title="Weekly health", icon=":material/summarize:"),
        st.Page("pages/alerts.py", title="Alerts", icon=":material/notifications:"),
    ],
}
try:
    # Never beside the one-off warm-up (imports, then gc.freeze), which waits for runs in progress.
    with warm.running(), guard.page():
        st.navigation(gate(pages)).run()   # gate: sign-in, and only the pages the role may open
finally:
    warm.start()   # once per process, after the first page is drawn (ui/warm.py)
