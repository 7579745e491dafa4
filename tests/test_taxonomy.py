import json

import pytest

from kyokan.taxonomy import Taxonomy, available, get_taxonomy

EMPLIFAI_TABLE1 = """Admiration 称賛 Positive
Amusement 娯楽 Positive
Approval 承認 Positive
Caring 思いやり Positive
Desire 願望 Positive
Excitement 興奮 Positive
Gratitude 感謝 Positive
Joy 喜び Positive
Love 愛 Positive
Optimism 楽観 Positive
Pride 誇り Positive
Relief 安心 Positive
Anger 怒り Negative
Annoyance 迷惑 Negative
Disappointment 失望 Negative
Disapproval 不承認 Negative
Disgust 嫌悪 Negative
Embarrassment 恥ずかしさ Negative
Fear 恐れ Negative
Grief 嘆き Negative
Nervousness 緊張 Negative
Remorse 後悔 Negative
Sadness 悲しみ Negative
Confusion 混乱 Ambiguous
Curiosity 好奇心 Ambiguous
Realization 気づき Ambiguous
Surprise 驚き Ambiguous
Neutral 平静 Neutral"""

EMPO_TABLE6 = """afraid angry wheel|angry afraid wheel|sad joyful wheel|grateful disgusted wheel|surprised anticipating wheel|trusting disgusted wheel|disgusted trusting wheel|anticipating surprised wheel|content anxious wheel|apprehensive annoyed wheel|joyful sad wheel|proud ashamed dyads|prepared anxious dyads|ashamed proud dyads|guilty proud dyads|nostalgic hopeful dyads|anxious content dyads|hopeful nostalgic dyads|sentimental apprehensive proposed|jealous faithful proposed|embarrassed confident proposed|excited devastated proposed|annoyed apprehensive proposed|lonely caring proposed|faithful jealous proposed|terrified furious proposed|confident embarrassed proposed|furious terrified proposed|disappointed impressed proposed|caring lonely proposed|impressed disappointed proposed|devastated excited proposed"""


def test_goemotions28_matches_emplifai_table1():
    t = get_taxonomy("goemotions28")
    rows = [line.split() for line in EMPLIFAI_TABLE1.splitlines()]
    assert [(lab.en, lab.ja, lab.sentiment.capitalize()) for lab in t.labels] == [tuple(r) for r in rows]
    assert len(t) == 28


def test_ed32_opposites_match_empo_table6():
    t = get_taxonomy("ed32")
    assert len(t) == 32
    for row in EMPO_TABLE6.split("|"):
        a, b, src = row.split()
        assert t.opposites[a].opposite == b
        assert t.opposites[a].source == src
    assert set(t.opposite_map()) == set(t.ids)


def test_goemotions28_every_label_has_a_reasoned_opposite():
    t = get_taxonomy("goemotions28")
    assert set(t.opposites) == set(t.ids)
    for k, v in t.opposites.items():
        assert v.opposite != k
        assert len(v.rationale) > 20
        assert v.source in ("wheel", "dyads", "proposed")
    asym = {a for a, _, _ in t.asymmetric_pairs()}
    assert asym == {"amusement", "caring", "desire", "neutral"}


def test_plutchik8_wheel_is_symmetric_with_dyads():
    t = get_taxonomy("plutchik8")
    assert t.asymmetric_pairs() == []
    assert t.opposite("joy") == "sadness" and t.opposite("trust") == "disgust"
    assert len(t.dyads) == 24
    assert all(a in t.ids and b in t.ids for d in t.dyads for a, b in [d.of])


@pytest.mark.parametrize("text,expected", [
    ("Joy", "joy"), ("JOY", "joy"), (" joy ", "joy"), ("ＪＯＹ", "joy"), ("喜び", "joy"),
    ("恥ずかしさ", "embarrassment"), ("nervous", "nervousness"), ("平静", "neutral"),
    ("Realisation", "realization"), ("「安心」", "relief"),
])
def test_normalize(text, expected):
    assert get_taxonomy().normalize(text) == expected


def test_suggest_nearest():
    t = get_taxonomy()
    assert t.normalize("happyness") is None
    assert t.suggest("joyy") == "joy"
    assert t.suggest("embarassment") == "embarrassment"


def test_available_and_user_file(tmp_path, monkeypatch):
    assert {"goemotions28", "ed32", "plutchik8"} <= set(available())
    f = tmp_path / "mini3.json"
    f.write_text(json.dumps({"name": "mini3", "labels": [{"id": "a", "ja": "あ"}, {"id": "b"}, {"id": "c"}],
                             "opposites": {"a": "b", "b": "a"}}))
    monkeypatch.setenv("KYOKAN_TAXONOMY_PATH", str(tmp_path))
    get_taxonomy.cache_clear()
    try:
        t = get_taxonomy("mini3")
        assert isinstance(t, Taxonomy) and t.normalize("あ") == "a" and t.opposite("a") == "b"
        assert get_taxonomy(str(f)).name == "mini3"
    finally:
        get_taxonomy.cache_clear()


def test_cli_taxonomy(cli):
    r = cli("taxonomy", "list")
    assert r.code == 0 and "goemotions28" in r.stdout
    r = cli("taxonomy", "show", "goemotions28", "--json")
    rows = json.loads(r.stdout)
    assert r.code == 0 and rows[0] == {"id": "admiration", "en": "Admiration", "ja": "称賛", "sentiment": "positive",
                                        "aliases": rows[0]["aliases"]}
    assert {"en", "ja", "sentiment"} <= set(rows[5])
    r = cli("taxonomy", "opposites", "ed32", "--json")
    opp = json.loads(r.stdout)
    assert opp["grateful"] == "disgusted" and opp["devastated"] == "excited" and len(opp) == 32
    r = cli("taxonomy", "opposites", "goemotions28")
    assert "asymmetric pairs (4)" in r.stdout
    r = cli("taxonomy", "show", "nope")
    assert r.code == 2 and "unknown taxonomy" in r.stderr and "Traceback" not in r.stderr
