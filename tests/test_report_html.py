"""`kyokan report` on a run the real stages made: every table cell equals the record field it is
bound to, "–" only where the stage says a value is missing, provenance lists what was used."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest

from report_util import run_cli


@pytest.fixture(scope="module")
def report(real_run: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    from kyokan.report import build_report
    from kyokan.report.tables import ReportOptions

    out = tmp_path_factory.mktemp("report") / "report.html"
    res = build_report(real_run, out, options=ReportOptions(reference="openai:sys-b", resamples=999))
    return out, res


def _resolve(run: Path, file: str, field: str) -> Any:
    from kyokan.report.discover import field_value

    obj = json.loads((run / file).read_text(encoding="utf-8"))
    if " / " in field:  # a ratio of two fields, e.g. status.ok / rows
        a, b = field.split(" / ")
        num, den = field_value(obj, a), field_value(obj, b)
        return num / den if den else None
    return field_value(obj, field)


def _shown(v: Any) -> set[str]:
    from kyokan.tables import fmt_num

    return {fmt_num(v, 2), fmt_num(v, 3)}


def test_every_cell_equals_its_record_field(real_run: Path, report: tuple[Path, dict[str, Any]]) -> None:
    _, res = report
    assert not res["errors"] and not res["problems"], (res["errors"], res["problems"])
    tdir = Path(res["tables_dir"])
    traced = 0
    for tr_file in sorted(tdir.glob("*.trace.json")):
        key = tr_file.name[: -len(".trace.json")]
        rows = list(csv.reader((tdir / f"{key}.csv").open(encoding="utf-8")))
        for cell in json.loads(tr_file.read_text(encoding="utf-8")):
            # the trace is what the record file says, and the cell shows exactly that
            for t in cell["from"]:
                assert _resolve(real_run, t["file"], t["field"]) == t["value"], (key, cell)
            vals = [t["value"] for t in cell["from"]]
            text = cell["text"].rstrip("*†‡")
            if len(vals) == 2 and " ± " in text:
                m, sd = text.split(" ± ")
                assert m in _shown(vals[0]) and sd in _shown(vals[1] or 0.0), (key, cell)
            else:
                assert text in _shown(vals[0]), (key, cell)
            row = next(r for r in rows if r[0] == cell["row"])
            assert row[rows[0].index(cell["column"])] == cell["text"]
            traced += 1
    assert traced >= 50
    # every number cell of the record-bound tables is traced (labels and "–" excepted)
    for key in ("emplifai_table2", "emplifai_table4", "empo_table4", "empo_table5", "format_adherence"):
        rows = list(csv.reader((tdir / f"{key}.csv").open(encoding="utf-8")))
        traces = json.loads((tdir / f"{key}.trace.json").read_text(encoding="utf-8"))
        want = {(r[0], rows[0][j]) for r in rows[1:] for j in range(1, len(r)) if r[j] != "–"}
        assert want == {(c["row"], c["column"]) for c in traces}, key


def test_empo_tables_equal_the_stage_summaries(real_run: Path, report: tuple[Path, dict[str, Any]]) -> None:
    """The held-out shape: a system whose first rows have no lexicon word still gets its IVA
    distances (not the context means), and Table 4 shows only the tries statistics."""
    _, res = report
    tdir = Path(res["tables_dir"])
    per = [json.loads(x) for x in (real_run / "eval_responses" / "openai_sys-a" / "per_example.jsonl").read_text(
        encoding="utf-8").splitlines()]
    assert all(r["values"]["iva"]["intensity_abs"] is None for r in per[:3])
    assert any(r["values"]["iva"]["intensity_abs"] is not None for r in per[3:])
    t5 = {r[0]: r for r in csv.reader((tdir / "empo_table5.csv").open(encoding="utf-8"))}
    t4 = {r[0]: r for r in csv.reader((tdir / "empo_table4.csv").open(encoding="utf-8"))}
    assert t4["Model"][1:] == ["# Templates", "# Span nodes", "# Total nodes", "# Root children", "Compression ratio",
                               "# Unique start words"]
    for system in ("openai:sys-a", "openai:sys-b"):
        s = json.loads((real_run / "eval_responses" / system.replace(":", "_") / "summary.json").read_text(encoding="utf-8"))
        iva = s["metrics"]["iva"]["means"]
        for j, dim in enumerate(("intensity", "valence", "arousal"), start=2):
            assert t5[system][j].rstrip("*†‡") == f"{iva[f'{dim}_abs']['mean']:.2f}"
            assert iva[f"{dim}_abs"]["mean"] != iva[f"{dim}_context"]["mean"]
        nidf = s["metrics"]["nidf"]["means"]["nidf"]
        assert t5[system][1] == f"{nidf['mean']:.2f} ± {nidf['std']:.2f}"
        tries = s["metrics"]["tries"]["values"]
        assert t4[system][1] == str(tries["templates"]) and t4[system][6] == str(tries["unique_start_words"])


def test_provenance_lists_what_the_stages_used(real_run: Path, report: tuple[Path, dict[str, Any]]) -> None:
    out, _ = report
    page = out.read_text(encoding="utf-8")
    prov = page[page.index("id='provenance'"):]
    # a Japanese run used ML-Ask only: no NRC / Warriner claims
    assert "ML-Ask" in prov and "NRC" not in prov and "Warriner" not in prov
    for model in ("openai:sys-a", "openai:sys-b", "openai:predictor", "openai:judge"):
        assert model in prov
    assert "Stand-in models" in page[: page.index("id='stages'")]
    # the human stage: packets from the run, ratings imported beside them
    stages = re.sub(r"<[^>]+>", " ", page.split("id='stages'")[1].split("</table>")[0])
    assert re.search(r"human\s+human ratings\s+found: human/", stages), stages
    # self-contained: nothing loaded from outside the file
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', page)
    assert "<script" not in page and page.count("data:image/png;base64,") >= 4


def test_packets_without_ratings_are_named_not_missing(real_run: Path, tmp_path: Path) -> None:
    import shutil

    from kyokan.report import build_report

    run = tmp_path / "run"
    shutil.copytree(real_run, run)
    shutil.rmtree(run / "human" / "ratings")
    res = build_report(run, tmp_path / "r.html")
    why = res["missing"]["EmplifAI Table 5 — judge vs human"]
    assert "rating packets but no imported ratings" in why and "kyokan human import" in why
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "stage human/ missing" not in page


def test_errors_are_shown_not_hidden(real_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["report", str(real_run), "-o", str(tmp_path / "r.html"), "--reference", "nobody"], capsys)
    assert code == 1 and "EmPO Table 5" in err and "nobody" in err
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Error while building this table" in page and "Not available: --reference" not in page
    # a record file of an unknown version is a problem the report names, with the file
    bad = tmp_path / "run2"
    import shutil

    shutil.copytree(real_run, bad)
    p = bad / "eval_responses" / "openai_sys-a" / "summary.json"
    obj = json.loads(p.read_text(encoding="utf-8"))
    obj["version"] = 99
    p.write_text(json.dumps(obj), encoding="utf-8")
    code, out, err = run_cli(["report", str(bad), "-o", str(tmp_path / "r2.html"), "--json"], capsys)
    assert code == 0
    res = json.loads(out)
    assert any("openai_sys-a/summary.json" in x and "version 99" in x for x in res["problems"])


def test_missing_run_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["report", str(tmp_path / "nope"), "-o", str(tmp_path / "x.html")], capsys)
    assert code == 2 and "not a run directory" in err


def test_japanese_plots_need_no_system_font(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no system CJK font, the packaged IPAex Gothic (matplotlib-fontja, from PyPI) draws
    every Japanese glyph: no "Glyph … missing from font" warning."""
    import warnings

    from kyokan.report import plots

    monkeypatch.setattr(plots, "SYSTEM_CJK_FONTS", ())
    assert plots.setup_matplotlib() == "IPAexGothic"
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.set_title("共感 喜び 悲しみ 不安")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        png = plots.figure_png(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
