"""modelwatch: monitoring for models in production over Parquet prediction logs.

The package holds the product's logic and never imports Streamlit, so everything here runs
and is tested without a UI (pages/ are thin scripts on top of it).
"""

__version__ = "0.1.0"
