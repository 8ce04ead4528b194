"""modelwatch: entry point. Page config and navigation; each page draws the shared sidebar."""

from pathlib import Path

import streamlit as st

from ui import guard

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
    ],
    "Is the world it sees still the one it learned?": [
        st.Page("pages/drift.py", title="Drift", icon=":material/waves:"),
    ],
    "How was the week?": [
        st.Page("pages/summary.py", title="Weekly health", icon=":material/summarize:"),
        st.Page("pages/alerts.py", title="Alerts", icon=":material/notifications:"),
    ],
}
with guard.page():
    st.navigation(pages).run()
