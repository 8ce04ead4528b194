"""What every benchmark script needs besides its scenarios: the machine it ran on, its load,
peak memory, CPU time, and its own section of docs/benchmarks.md (other sections kept).

    from benchlib import machine, load_average, peak_mb, replace_section
    text = f"Measured on: {machine('duckdb', 'pyarrow')}; load {load_average()}"
    replace_section(Path("docs/benchmarks.md"), text, begin="## My section")
"""

from __future__ import annotations

import importlib
import os
import platform
import resource
from pathlib import Path

# How a package is named in a report (module name -> label).
LABELS = {"duckdb": "DuckDB", "polars": "Polars", "streamlit": "Streamlit", "pyarrow": "pyarrow",
          "pyspark": "PySpark", "numpy": "NumPy", "scipy": "SciPy", "evidently": "Evidently"}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine(*modules: str) -> str:
    """'2 cores (CPU), 24 GiB RAM, Linux 6.1, Python 3.11.7, DuckDB 2.0.1, ...' for the
    packages named (module names; one that is not installed is left out)."""
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    parts = [f"{os.cpu_count()} cores ({cpu_model()})", f"{mem:.0f} GiB RAM",
             f"{platform.system()} {platform.release()}", f"Python {platform.python_version()}"]
    for name in modules:
        try:
            version = importlib.import_module(name).__version__
        except (ImportError, AttributeError):
            continue
        parts.append(f"{LABELS.get(name, name)} {version}")
    return ", ".join(parts)


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, '3.9 / 4.1 / 4.4' (the machine is shared)."""
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def peak_mb(children: bool = False) -> float:
    """Peak resident memory in MB of this process (or of its finished child processes)."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024   # KiB on Linux


def replace_section(path: Path, text: str, begin: str, end: str | None = None) -> None:
    """Put `text` (which starts with `begin`) in place of the section of `path` from `begin`
    to `end` (included), or without `end` to the next '## ' heading or '<!-- ' marker (another
    script's); appended when absent.
    The rest of the document is kept as it is."""
    doc = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if begin in doc:
        start = doc.index(begin)
        if end is not None and end in doc[start:]:
            stop = doc.index(end, start) + len(end)
            rest = doc[stop:].lstrip("\n")
        else:
            ends = [i for i in (doc.find("\n## ", start + len(begin)),
                                doc.find("\n<!-- ", start + len(begin))) if i != -1]
            rest = doc[min(ends) + 1:] if ends else ""
        doc = doc[:start] + text.rstrip("\n") + "\n" + ("\n" + rest if rest else "")
    else:
        doc = doc.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc, encoding="utf-8")


def replace_head(path: Path, text: str, marker: str) -> None:
    """Put `text` in place of everything before `marker`, keeping the marker and what follows
    (notes and the sections other scripts write)."""
    doc = path.read_text(encoding="utf-8") if path.exists() else ""
    tail = doc.split(marker, 1)[1] if marker in doc else "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n" + marker + tail, encoding="utf-8")
