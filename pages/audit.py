"""Audit (admins): every write, who made it, when, from which session; filters and CSV."""

import streamlit as st

from monitoring.auth import audit
from ui import audit as ua
from ui import auth, sidebar

st.title("Audit")
sidebar.current()   # keeps the shared filters alive across pages; the trail needs no logs
auth.require_page("audit.read")
eng = auth.engine()
kwargs = ua.filters(eng)
frame = audit.query(eng, **kwargs)
st.caption(f"{frame.height:,} entries, newest first. Sign-ins, refusals (outcome denied) and "
           "failed sign-ins are recorded too; passwords and tokens never are.")
ua.table(frame)
ua.export_button(eng, kwargs)
