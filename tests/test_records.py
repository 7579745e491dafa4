"""The typed records: every file the real stages wrote reads back as its declared kind, validates
against the exported JSON Schema (checked by the independent `jsonschema` package, as a user's tool
would), and readers refuse other kinds and versions with file:line: field messages."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest


def _record_files(run: Path) -> list[Path]:
    from kyokan.records import declared_kind

    return [p for p in sorted(run.rglob("*.json*")) if p.suffix in (".json", ".jsonl") and declared_kind(p)]


def test_stage_files_match_the_exported_schemas(real_run: Path, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from kyokan.records import REGISTRY, declared_kind

    r = cli("schema", "dump", "-o", tmp_path / "schemas")
    assert r.code == 0, r.stderr
    schemas = {p.name.split(".v")[0]: json.loads(p.read_text(encoding="utf-8")) for p in (tmp_path / "schemas").glob("*.json")}
    assert set(schemas) == set(REGISTRY)
    kinds = set()
    for f in _record_files(real_run):
        kind = declared_kind(f)
        assert kind is not None
        kinds.add(kind)
        objs = [json.loads(f.read_text(encoding="utf-8"))] if f.suffix == ".json" else \
            [json.loads(x) for x in f.read_text(encoding="utf-8").splitlines() if x.strip()]
        for o in objs:
            jsonschema.validate(o, schemas[kind])
        assert cli("schema", "check", f).code == 0
    # the run holds every kind its stages write
    assert {"kyokan.generation", "kyokan.generation.summary", "kyokan.judge.row", "kyokan.judge.summary",
            "kyokan.eval.responses", "kyokan.eval.responses.example", "kyokan.eval.labels", "kyokan.eval.prediction",
            "kyokan.eval.labels.example", "kyokan.human.item", "kyokan.human.rating", "kyokan.human.summary",
            "kyokan.stage", "kyokan.stage.provenance"} <= kinds


def test_readers_refuse_other_kinds_and_versions(real_run: Path, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    from kyokan.errors import InputError
    from kyokan.records import JudgedRow, ResponsesSummary, read_record, read_rows

    judged = tmp_path / "judged.jsonl"
    shutil.copy(real_run / "judge" / "judged.jsonl", judged)
    assert len(read_rows(judged, JudgedRow)) == 24
    with pytest.raises(InputError, match=r"judged\.jsonl:1: kind: 'kyokan\.judge\.row' \(a known kind\) where "
                                         r"kyokan\.eval\.responses was expected"):
        read_rows(judged, ResponsesSummary)
    lines = judged.read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[1])
    row["version"] = 7
    bad = json.loads(lines[2])
    bad["scores"] = "high"
    judged.write_text("\n".join([lines[0], json.dumps(row), json.dumps(bad), "{oops", *lines[4:]]) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as e:
        read_rows(judged, JudgedRow)
    msgs = [str(p) for p in e.value.problems]
    assert f"{judged}:2: version: kyokan.judge.row version 7; this kyokan reads version 1" in msgs
    assert any(m.startswith(f"{judged}:3: scores: ") for m in msgs)
    assert any(m.startswith(f"{judged}:4: malformed JSON") for m in msgs)
    r = cli("schema", "check", judged)
    assert r.code == 2 and "Traceback" not in r.stderr and f"{judged}:2: version" in r.stderr
    summary = real_run / "eval_responses" / "openai_sys-a" / "summary.json"
    assert read_record(summary, ResponsesSummary).source == "openai:sys-a"
    legacy = tmp_path / "legacy.json"
    legacy.write_text('{"metrics": {}}', encoding="utf-8")
    with pytest.raises(InputError, match="kind: missing: not a kyokan record"):
        read_record(legacy, ResponsesSummary)
