"""modelwatch: entry point. Page config and navigation; each page draws the shared sidebar."""

import streamlit as st

st.set_page_config(page_title="modelwatch", page_icon=":material/monitoring:", layout="wide")

pages = {
    "Is it fast and up?": [
        st.Page("pages/overview.py", title="Overview", icon=":material/home:", default=True),
        st.Page("pages/latency.py", title="Latency", icon=":material/timer:"),
        st.Page("pages/errors.py", title="Errors", icon=":material/error:"),
        st.Page("pages/throughput.py", title="Throughput", icon=":material/show_chart:"),
    ],
}
st.navigation(pages).run()
