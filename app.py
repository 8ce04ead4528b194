"""modelwatch: entry point. Page config, the shared sidebar, navigation over pages/."""

import streamlit as st

from ui import panels, sidebar

st.set_page_config(page_title="modelwatch", page_icon="📈", layout="wide")

pages = {
    "Is it fast and up?": [
        st.Page("pages/overview.py", title="Overview", icon="🏠", default=True),
        st.Page("pages/latency.py", title="Latency", icon="⏱️"),
        st.Page("pages/errors.py", title="Errors", icon="❗"),
        st.Page("pages/throughput.py", title="Throughput", icon="📶"),
    ],
}
nav = st.navigation(pages)

view = sidebar.render()
st.session_state["_view"] = view
if view is not None and view.extent.rows:
    panels.health_panel(view)
nav.run()
