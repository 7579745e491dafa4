"""The HTML report: paper-shaped tables (also CSV/Markdown, with a trace of every number), plots
and provenance, read from a run directory's typed records.

``build_report`` imports matplotlib only when called."""

from typing import Any

from kyokan.tables import Table, Trace, fmt_num, fmt_p


def build_report(run_dir: Any, output: Any, tables_dir: Any = None, title: str | None = None,
                 options: Any = None) -> dict[str, Any]:
    from kyokan.report.html import build_report as _build

    return _build(run_dir, output, tables_dir, title, options)


__all__ = ["Table", "Trace", "build_report", "fmt_num", "fmt_p"]
