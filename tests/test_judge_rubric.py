"""Rubric files: the EmplifAI metrics with anchored points in both languages, content-hash versions,
user rubric files with precise errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kyokan.errors import InputError
from kyokan.judge import (
    EMPLIFAI_METRICS,
    get_rubric,
    load_rubric_file,
    per_metric_messages,
    rubric_from_dict,
)
from kyokan.judge.rubric import _builtin_files


def test_builtin_rubric_has_the_seven_emplifai_metrics_with_all_anchors() -> None:
    r = get_rubric()
    assert tuple(r.metric_ids) == EMPLIFAI_METRICS
    assert (r.scale_min, r.scale_max) == (1, 5)
    for m in r.metrics:
        for lang in ("ja", "en"):
            assert m.name[lang] and m.definition[lang]
            assert sorted(m.anchors[lang]) == [1, 2, 3, 4, 5]
            assert len(set(m.anchors[lang].values())) == 5, f"{m.id}/{lang}: anchors must differ"
    # Table 3's definitions, in English
    assert "warmly and supportively" in r.metric("general_empathy").definition["en"]
    assert "potential risk of harm" in r.metric("harmlessness").definition["en"]
    assert r.version.startswith("emplifai7@") and len(r.hash) == 12


def test_version_is_a_content_hash(tmp_path: Path) -> None:
    data = json.loads(_builtin_files()["emplifai7"].read_text(encoding="utf-8"))
    base = rubric_from_dict(data)
    # the same content with other key order and whitespace: same version
    p = tmp_path / "same.json"
    p.write_text(json.dumps(dict(reversed(list(data.items()))), ensure_ascii=False, indent=4), encoding="utf-8")
    assert load_rubric_file(p).version == base.version
    # one anchor changed: a new version
    data["metrics"][0]["anchors"]["ja"]["3"] += "。"
    assert rubric_from_dict(data).version != base.version


def test_user_rubric_problems_name_the_field(tmp_path: Path) -> None:
    bad = {"name": "mine", "scale": {"min": 1, "max": 3},
           "metrics": [{"id": "warmth", "name": {"ja": "温かさ", "en": "Warmth"},
                        "definition": {"ja": "温かさ", "en": ""},
                        "anchors": {"ja": {"1": "a", "2": "b", "3": "c"}, "en": {"1": "a", "3": "c", "4": "d"}}}]}
    p = tmp_path / "mine.json"
    p.write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(InputError) as e:
        load_rubric_file(p)
    text = str(e.value)
    assert f"{p}: metrics[0].definition.en: missing or empty" in text
    assert "metrics[0].anchors.en.2: missing or empty" in text
    assert "metrics[0].anchors.en: points outside the scale: 4" in text
    p.write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="not valid JSON"):
        load_rubric_file(p)


def test_user_rubric_drives_the_prompt_and_language_placeholder(tmp_path: Path) -> None:
    mine = {"name": "mine", "scale": {"min": 0, "max": 2},
            "metrics": [{"id": "clarity", "name": {"ja": "{language}の明瞭さ", "en": "Clarity of the {language}"},
                         "definition": {"ja": "明瞭さ", "en": "How clear the {language} is"},
                         "anchors": {"ja": {"0": "不明瞭", "1": "普通", "2": "明瞭"},
                                     "en": {"0": "unclear", "1": "so-so", "2": "clear"}}}]}
    p = tmp_path / "mine.json"
    p.write_text(json.dumps(mine, ensure_ascii=False), encoding="utf-8")
    r = get_rubric(str(p))
    rec = {"id": "x", "lang": "en", "situation": "s", "emotion": "joy",
           "turns": [{"role": "speaker", "text": "hi"}, {"role": "listener", "text": "hello"}]}
    msgs = per_metric_messages(rec, r, "clarity", "en")
    assert "Clarity of the English" in msgs[1]["content"]
    assert "0: unclear" in msgs[1]["content"] and "from 0 to 2" in msgs[1]["content"]
    ja = per_metric_messages(rec, r, "clarity", "ja")[1]["content"]
    assert "英語の明瞭さ" in ja and "喜び" in ja  # dialogue language and emotion named in Japanese
