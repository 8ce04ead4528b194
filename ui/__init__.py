"""Streamlit glue shared by the pages: the sidebar, cached calls into monitoring/, panels.

Pages import from here; monitoring/ never imports this package (or Streamlit).
"""
