"""Models: the registry (models.toml) beside what production shows for each version."""

import streamlit as st

from monitoring.fmt import md
from ui import compare as uc
from ui import sidebar

st.title("Models")
view = sidebar.require()
fleet = uc.models(view.ws, view.fingerprint)
st.caption(("No registry" if fleet.absent else f"Registry {md(fleet.path)}") + " · status is inferred from the logs' last 24 hours of traffic "
           "(no traffic: retired; most traffic: active; a newer version beside it: canary); the "
           "sidebar's filters do not apply here.")
if fleet.error:
    st.error(f"The model registry cannot be used: {md(fleet.error, limit=600)}")
if fleet.absent:
    st.info(f"No model registry at {md(fleet.path)}: the table shows what the logs say. A registry "
            "(models.toml, see docs/compare.md) adds each version's training and deployment dates, its "
            "validation accuracy (checked against production's) and notes.")

if fleet.rows:
    st.dataframe(uc.registry_rows(fleet), hide_index=True)
flagged = [r for r in fleet.rows if r.disagree]
for r in flagged:
    st.warning(f"{md(r.version)}: production accuracy {r.accuracy:.1%} ({r.accuracy_ci[0]:.1%}–"
               f"{r.accuracy_ci[1]:.1%}, {r.labelled:,} labelled) disagrees significantly with validation "
               f"accuracy {r.validation_accuracy:.1%}." + (f" {md(r.note[:1].upper() + r.note[1:])}." if r.note else ""))
if fleet.rows and not flagged and not fleet.error and not fleet.absent:
    st.success("Production accuracy agrees with validation for every version with labels.")
if fleet.unregistered:
    st.warning("In the logs but missing from the registry: " + ", ".join(md(v) for v in fleet.unregistered)
               + ". Add them to models.toml.")
if fleet.not_served:
    st.info("In the registry but not served in these logs: " + ", ".join(md(e.version) for e in fleet.not_served))

choices = [r.version for r in fleet.rows if r.entry] + [e.version for e in fleet.not_served]
if choices:
    st.subheader("Registry entry")
    pick = st.selectbox("Version", choices, index=len(choices) - 1, key="models_version")
    st.markdown(uc.entry_markdown(fleet, pick))
