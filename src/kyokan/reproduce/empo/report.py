"""``OUT/report.html`` of ``kyokan reproduce empo``: one self-contained page (kyokan's report CSS
and ``Table.to_html``), every published cell next to kyokan's with its status and explanation."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from kyokan.io import write_text
from kyokan.report.html import CSS
from kyokan.tables import Table, fmt_num, fmt_p

TITLES = {"2": "Table 2 — DIFF-EPITOME and BERTScore", "4": "Table 4 — response tries (diversity)",
          "5": "Table 5 — specificity (NIDF) and word choice (IVA distances)",
          "7": "Table 7 — human evaluation: Cohen's d (pooled SD), one-sided paired t-tests",
          "4.3": "§4.3 — mean reply length (characters)"}
EXTRA_CSS = (".mismatch td{background:#fff0f0}.match td:nth-last-child(2){color:#176417}"
             "td:last-child{text-align:left;max-width:34rem}")


def _fmt(v: float | None, digits: int) -> str:
    if v is None:
        return "–"
    if float(v).is_integer() and digits == 0:
        return str(int(v))
    return f"{v:.{digits + 2}f}"


def cell_table(table: str, cells: list[dict[str, Any]]) -> Table:
    t = Table(f"empo_table{table.replace('.', '_')}", TITLES.get(table, table),
              ["system", "metric", "paper", "kyokan", "Δ", "status", "note"])
    for c in cells:
        digits = int(c["digits"])
        delta = "–" if c["delta"] is None else f"{c['delta']:+.{digits + 2}f}"
        t.add(c["system"], c["metric"], c["paper_printed"], _fmt(c["kyokan"], digits), delta,
              {"match": "✓ match", "mismatch": "✗ MISMATCH"}.get(c["status"], c["status"]), c["note"])
    t.data = cells
    return t


def _rowclass(table_html: str, cells: list[dict[str, Any]]) -> str:
    # mark mismatching rows for the reader (the Table helper writes plain <tr>)
    parts = table_html.split("<tr>")
    head, body = parts[:2], parts[2:]
    out = head[0] + "<tr>" + head[1]
    for c, seg in zip(cells, body, strict=False):
        out += f"<tr class='{html.escape(c['status'].replace(' ', '-'))}'>" + seg
    return out


def write_report(path: str | Path, summary: dict[str, Any]) -> None:
    e = html.escape
    cells = summary["cells"]
    counts = summary["counts"]
    prof = summary["profile"]
    body = [f"<p>Profile <b>{e(prof['name'])}</b>: {e(prof['summary'])}. "
            f"{counts['match']} cells match the paper, <b>{counts['mismatch']} do not</b>, "
            f"{counts['not_computed']} were not computed. A cell matches when kyokan's value rounds to the "
            "printed one (within half a unit of its last digit).</p>",
            f"<p class='license'>{e(summary['license_note'])}</p>"]
    if summary.get("subset"):
        body.append("<div class='standin'><b>The input is a subset of the release</b> — figures are not expected to "
                    "match the paper: <ul>" + "".join(f"<li>{e(x)}</li>" for x in summary["subset"]) + "</ul></div>")
    if summary.get("skipped"):
        body.append("<div class='missing'><b>Not computed / substituted</b><ul>"
                    + "".join(f"<li>{e(k)}: {e(v)}</li>" for k, v in summary["skipped"].items()) + "</ul></div>")
    for table in ("2", "4", "5", "7", "4.3"):
        cs = [c for c in cells if c["table"] == table]
        if not cs:
            continue
        t = cell_table(table, cs)
        body.append(f"<h2 id='t{table}'>{e(TITLES[table])}</h2>")
        body.append(_rowclass(t.to_html(), cs))
        if table == "5" and summary.get("table5_tests"):
            tt = Table("empo_table5_tests", "Table 5 significance: each system vs human (two-sided)",
                       ["metric", "system", "mean", "mean human", "Welch t", "Welch p", "permutation p"],
                       caption=f"Welch's t-test and a permutation test of the difference of means "
                               f"({summary['table5_tests'][0]['n_resamples']} resamples, seed "
                               f"{summary['table5_tests'][0]['seed']}), as EmPO's notebooks ran scipy's ttest_ind")
            for r in summary["table5_tests"]:
                tt.add(r["metric"], r["system"], fmt_num(r["mean"], 4), fmt_num(r["mean_human"], 4),
                       fmt_num(r["welch_t"], 2), fmt_p(r["welch_p"]), fmt_p(r["permutation_p"]))
            body.append(tt.to_html())
        if table == "7" and summary.get("table7_tests"):
            tt = Table("empo_table7_tests", "Table 7 tests: one-sided paired t-test that A is rated higher than B",
                       ["A > B", "dim", "items", "mean A", "mean B", "t", "p", "p (Bonferroni)", "d pooled", "d_z"],
                       caption=f"Bonferroni over the family of {summary['table7_tests'][0]['family']} tests; the paper "
                               "marks cells by uncorrected p and notes that most are not significant after correction")
            for r in summary["table7_tests"]:
                tt.add(r["pair"], r["dim"], r["n_items"], fmt_num(r["mean_a"], 2), fmt_num(r["mean_b"], 2),
                       fmt_num(r["t"], 2), fmt_p(r["p"]), fmt_p(r["p_bonferroni"]), fmt_num(r["d_pooled"], 2),
                       fmt_num(r["d_z"], 2))
            body.append(tt.to_html())
    body.append("<h2 id='inputs'>Inputs</h2><table><thead><tr><th>file</th><th>path</th><th>sha256</th></tr></thead><tbody>"
                + "".join(f"<tr><td>{e(k)}</td><td>{e(v['path'])}</td><td>{e(v['sha256'] or 'folder')}</td></tr>"
                          for k, v in summary["inputs"].items()) + "</tbody></table>")
    body.append("<h2 id='profile'>Metric profile</h2><pre>" + e(_pretty(prof)) + "</pre>")
    if summary.get("bertscore"):
        body.append("<h2>BERTScore encoder</h2><pre>" + e(_pretty(summary["bertscore"])) + "</pre>")
    body.append("<h2>Provenance</h2><pre>" + e(_pretty(summary["provenance"])) + "</pre>")
    doc = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
           "<meta name='viewport' content='width=device-width, initial-scale=1'>"
           f"<title>EmPO reproduced by kyokan</title><style>{CSS}{EXTRA_CSS}</style></head><body>"
           "<h1>EmPO reproduced from its public release</h1>" + "".join(body) + "</body></html>")
    write_text(path, doc)


def _pretty(obj: Any) -> str:
    import json

    return json.dumps(obj, indent=2, ensure_ascii=False, default=str)
