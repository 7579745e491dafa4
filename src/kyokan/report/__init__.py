"""The HTML report: paper-shaped tables (also CSV/Markdown), plots and provenance from a run directory.

``Table`` is light; ``build_report`` imports matplotlib only when called."""

from typing import Any

from kyokan.tables import Table, fmt_num, fmt_p


def build_report(run_dir: Any, output: Any, tables_dir: Any = None, title: str | None = None) -> dict[str, Any]:
    from kyokan.report.html import build_report as _build

    return _build(run_dir, output, tables_dir, title)


__all__ = ["Table", "build_report", "fmt_num", "fmt_p"]
