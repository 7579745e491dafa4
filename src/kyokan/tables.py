"""A small table type every area can write as CSV, Markdown and HTML (no heavy imports)."""

from __future__ import annotations

import csv
import html
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kyokan.io import write_text


def fmt_num(v: Any, digits: int = 2) -> str:
    """Numbers as the papers print them; None/NaN as an en dash."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        if v == int(v) and abs(v) < 1e6:
            return str(int(v))
        return f"{v:.{digits}f}"
    return str(v)


def fmt_p(p: float | None) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "–"
    if p < 0.001:
        return f"{p:.1e}"
    return f"{p:.2f}" if p >= 0.01 else f"{p:.3f}"


@dataclass(frozen=True)
class Trace:
    """Where a cell's number comes from: the record file, the dotted field inside it, and the
    value read there (so the cell can be checked against the file)."""

    file: str
    field: str
    value: Any

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "field": self.field, "value": self.value}


@dataclass
class Table:
    """Rows of display strings plus the title, caption and notes a reader needs to trust them.

    ``key`` names the files (``<key>.csv`` / ``<key>.md``); ``data`` keeps the unformatted
    numbers for machine use (written alongside in JSON outputs); ``traces`` holds, per row, the
    record fields each cell was read from (written as ``<key>.trace.json``)."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    caption: str = ""
    notes: list[str] = field(default_factory=list)
    data: list[dict[str, Any]] = field(default_factory=list)
    traces: list[list[list[Trace]]] = field(default_factory=list)

    def add(self, *cells: Any, trace: list[list[Trace]] | None = None) -> None:
        """A row; ``trace`` gives, per cell, the record fields it shows (empty for labels)."""
        if len(cells) != len(self.columns):
            raise ValueError(f"{self.key}: row has {len(cells)} cells, table has {len(self.columns)} columns")
        if trace is not None and len(trace) != len(cells):
            raise ValueError(f"{self.key}: {len(trace)} traces for {len(cells)} cells")
        self.rows.append([c if isinstance(c, str) else fmt_num(c) for c in cells])
        self.traces.append(trace if trace is not None else [[] for _ in cells])

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.columns)
        w.writerows(self.rows)
        return buf.getvalue()

    def to_markdown(self) -> str:
        def esc(s: str) -> str:
            return s.replace("|", "\\|").replace("\n", " ")

        lines = [f"**{esc(self.title)}**", ""]
        lines.append("| " + " | ".join(esc(c) for c in self.columns) + " |")
        lines.append("|" + "|".join("---" for _ in self.columns) + "|")
        lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in self.rows]
        if self.caption:
            lines += ["", esc(self.caption)]
        lines += [f"- {esc(n)}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        e = html.escape
        head = "".join(f"<th>{e(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in self.rows)
        notes = "".join(f"<li>{e(n)}</li>" for n in self.notes)
        parts = [f'<figure class="table" id="t-{e(self.key)}"><figcaption><b>{e(self.title)}</b>'
                 + (f" — {e(self.caption)}" if self.caption else "") + "</figcaption>",
                 f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"]
        if notes:
            parts.append(f'<ul class="notes">{notes}</ul>')
        parts.append("</figure>")
        return "".join(parts)

    def trace_rows(self) -> list[dict[str, Any]]:
        """Every traced cell: row label, column, the text shown and the fields it came from."""
        out: list[dict[str, Any]] = []
        for row, traces in zip(self.rows, self.traces, strict=True):
            for col, text, tr in zip(self.columns, row, traces, strict=True):
                if tr:
                    out.append({"row": row[0], "column": col, "text": text, "from": [t.to_dict() for t in tr]})
        return out

    def write(self, folder: str | Path) -> list[Path]:
        """``<folder>/<key>.csv``, ``<key>.md`` and, when cells are traced, ``<key>.trace.json``."""
        import json

        d = Path(folder)
        paths = [d / f"{self.key}.csv", d / f"{self.key}.md"]
        write_text(paths[0], self.to_csv())
        write_text(paths[1], self.to_markdown())
        tr = self.trace_rows()
        if tr:
            paths.append(d / f"{self.key}.trace.json")
            write_text(paths[2], json.dumps(tr, ensure_ascii=False, indent=1, default=str) + "\n")
        return paths
