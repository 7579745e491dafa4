"""Property: for any response-metric summaries a stage can write (values present, undefined,
metrics skipped or never run), every EmPO table cell either shows the record field it is bound to
— and the trace names that field with that value — or is "–" with a note naming the system."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kyokan.records import MeanCI, MetricSummary, ResponseInputs, ResponsesSummary, write_record
from kyokan.report.discover import discover, field_value
from kyokan.report.tables import (
    IVA_FIELDS,
    TRIES_FIELDS,
    ReportOptions,
    empo_table2,
    empo_table4,
    empo_table5,
)
from kyokan.tables import fmt_num

num = st.one_of(st.none(), st.floats(0, 1, allow_nan=False), st.integers(0, 500))


@st.composite
def mean_ci(draw: st.DrawFn) -> MeanCI:
    m = draw(st.one_of(st.none(), st.floats(-2, 2, allow_nan=False)))
    n = 0 if m is None else draw(st.integers(1, 50))
    return MeanCI(mean=m, std=None if m is None else draw(st.floats(0, 1, allow_nan=False)), n=n,
                  missing=draw(st.integers(0, 5)) if m is not None else draw(st.integers(1, 50)))


@st.composite
def summary(draw: st.DrawFn, source: str) -> ResponsesSummary:
    metrics: dict[str, MetricSummary] = {}
    skipped: dict[str, str] = {}
    for name, fields in (("nidf", ["nidf"]), ("iva", [f for _, f in IVA_FIELDS]), ("bertscore", ["f1"]),
                         ("diff_epitome", ["mean"])):
        how = draw(st.sampled_from(["ran", "skipped", "absent"]))
        if how == "ran":
            keep = draw(st.lists(st.sampled_from(fields), unique=True, min_size=0, max_size=len(fields)))
            metrics[name] = MetricSummary(definition=name, means={f: draw(mean_ci()) for f in keep})
        elif how == "skipped":
            skipped[name] = f"why {name} did not run"
    if draw(st.booleans()):
        keep = draw(st.lists(st.sampled_from([f for _, f in TRIES_FIELDS]), unique=True))
        metrics["tries"] = MetricSummary(definition="tries", values={f: draw(num) for f in keep})
    return ResponsesSummary(source=source, lang="en", metrics=metrics, skipped=skipped,
                            inputs=ResponseInputs(generated="g.jsonl", examples=3, generated_rows=3))


@st.composite
def run_summaries(draw: st.DrawFn) -> list[ResponsesSummary]:
    names = draw(st.lists(st.sampled_from(["base", "sft", "dpo", "human", "lenctl"]), unique=True, min_size=1, max_size=4))
    return [draw(summary(n)) for n in names]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(run_summaries())
def test_every_cell_is_its_field_or_a_noted_dash(summaries: list[ResponsesSummary]) -> None:
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        for s in summaries:
            write_record(root / "eval_responses" / s.source / "summary.json", s)
        run = discover(root)
        assert not run.problems
        for build in (empo_table2, empo_table4, empo_table5):
            t = build(run, ReportOptions())
            assert not isinstance(t, str)
            for row, traces in zip(t.rows, t.traces, strict=True):
                assert len({r[0] for r in t.rows}) == len(t.rows)
                src = row[0]
                rec = next(s for s in summaries if s.source == src)
                for text, tr in zip(row[1:], traces[1:], strict=True):
                    if text == "–":
                        # missing: a note names the system (a value the stage left undefined, a
                        # metric that was skipped or not run) — or the trace shows the null field
                        assert any(n.startswith(f"{src}:") for n in t.notes) or \
                            (tr and all(x.value is None for x in tr)), (t.key, src, t.notes)
                        continue
                    assert tr, (t.key, src, text)
                    for x in tr:
                        assert field_value(rec, x.field) == x.value
                    shown = text.split(" ± ")
                    for part, x in zip(shown, tr, strict=False):
                        assert part in {fmt_num(x.value, 2), fmt_num(x.value, 3)}, (t.key, text, x)
