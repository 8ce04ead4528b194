"""Model quality from late labels: metrics with intervals, over time, per segment, fairness,
and estimates before the labels come. See docs/quality.md.

    from monitoring.quality import quality_report
    r = quality_report(ws, chunk="week", by="region", sensitive="device")
"""

from .report import fairness_report, quality_report
from .settings import QualitySettings, load

__all__ = ["QualitySettings", "fairness_report", "load", "quality_report"]
