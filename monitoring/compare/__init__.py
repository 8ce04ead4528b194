"""Is the new version better? A/B and canary comparisons of two model versions, with
always-valid intervals, Holm across guarded metrics, and one verdict (`verdict.judge`)."""

from .report import CompareError, CompareResult, compare
from .settings import CompareSettings, Tolerance, load_compare_settings
from .verdict import Comparison, MetricResult, judge

__all__ = ["CompareError", "CompareResult", "CompareSettings", "Comparison", "MetricResult", "Tolerance",
           "compare", "judge", "load_compare_settings"]
