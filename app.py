"""modelwatch: entry point. Page config and navigation; each page draws the shared sidebar."""

import streamlit as st

st.set_page_config(page_title="modelwatch", page_icon="📈", layout="wide")

pages = {
    "Is it fast and up?": [
        st.Page("pages/overview.py", title="Overview", icon="🏠", default=True),
        st.Page("pages/latency.py", title="Latency", icon="⏱️"),
        st.Page("pages/errors.py", title="Errors", icon="❗"),
        st.Page("pages/throughput.py", title="Throughput", icon="📶"),
    ],
}
st.navigation(pages).run()
