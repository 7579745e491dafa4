import json
import math
from collections import Counter

from kyokan.data import compute_stats, normalized_entropy, read_records, sample_pairs, sample_path
from kyokan.data.sampling import assign_splits


def _rec(i, emo, sid, texts=("a b", "c")):
    return {"id": f"d{i}", "situation_id": sid, "emotion": emo, "lang": "en", "situation": "s x",
            "turns": [{"role": "speaker", "text": texts[0]}, {"role": "listener", "text": texts[1]}], "meta": {}}


def test_stats_hand_computed():
    recs = [_rec(0, "joy", "s1"), _rec(1, "joy", "s1"), _rec(2, "joy", "s2"), _rec(3, "fear", "s3", ("x y z", "c"))]
    st = compute_stats(recs, n_labels=28)
    assert st["dialogues"] == 4 and st["situations"] == 3
    assert st["per_emotion"] == {"fear": {"dialogues": 1, "situations": 1}, "joy": {"dialogues": 3, "situations": 2}}
    p = [3 / 4, 1 / 4]
    h = -sum(x * math.log(x) for x in p) / math.log(28)
    assert abs(st["label_balance"]["normalized_entropy"] - round(h, 4)) < 1e-9
    assert st["per_emotion_situation"]["pairs"] == 3
    assert st["per_emotion_situation"]["dialogues_per_pair"]["max"] == 2
    assert st["length_chars"]["speaker"]["max"] == 5
    assert st["length_tokens"]["speaker"]["max"] == 3
    # "c" appears 4 times as a listener text, "a b" 3 times
    assert st["duplicate_texts"]["distinct_repeated"] == 2 and st["duplicate_texts"]["extra_copies"] == 5


def test_normalized_entropy_balanced():
    assert normalized_entropy([5, 5, 5, 5], 4) == 1.0
    assert normalized_entropy([5, 5], 4) == 0.5


def test_stats_cli_japanese_sample(cli):
    r = cli("data", "stats", sample_path("ja"), "--json")
    assert r.code == 0
    st = json.loads(r.stdout)
    assert st["dialogues"] == 168 and st["situations"] == 56 and len(st["per_emotion"]) == 28
    assert all(v == {"dialogues": 6, "situations": 2} for v in st["per_emotion"].values())
    assert st["label_balance"]["normalized_entropy"] == 1.0
    assert st["tokenizer"]["ja"].startswith("fugashi")
    assert st["length_tokens"]["dialogue"]["mean"] > 20


def test_sample_reproducible_and_distinct(tmp_path, cli):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert cli("data", "sample", sample_path("ja"), "--n", "20", "--seed", "42", "-o", a).code == 0
    assert cli("data", "sample", sample_path("ja"), "--n", "20", "--seed", "42", "-o", b).code == 0
    assert a.read_bytes() == b.read_bytes()
    rows = [json.loads(x) for x in a.read_text(encoding="utf-8").splitlines()]
    pairs = {(r["emotion"], r["situation_id"]) for r in rows}
    assert len(rows) == 20 and len(pairs) == 20
    c = tmp_path / "c.jsonl"
    cli("data", "sample", sample_path("ja"), "--n", "20", "--seed", "7", "-o", c)
    assert c.read_bytes() != a.read_bytes()
    assert cli("data", "validate", a).code == 0


def test_sample_stratified_and_order_independent():
    recs = list(read_records(sample_path("ja")))
    rows, rep = sample_pairs(recs, 28, 42, stratify=True)
    assert Counter(r["emotion"] for r in rows) == Counter({e: 1 for e in rep["pairs_per_emotion"]})
    assert len(rep["pairs_per_emotion"]) == 28
    rows2, _ = sample_pairs(list(reversed(recs)), 28, 42, stratify=True)
    assert [r["id"] for r in rows] == [r["id"] for r in rows2]
    allrows, _ = sample_pairs(recs, 5, 1, all_dialogues=True)
    assert len(allrows) == 15


def test_sample_too_many(cli):
    r = cli("data", "sample", sample_path("ja"), "--n", "57", "--seed", "1", "-o", "/dev/null")
    assert r.code == 2 and "56 emotion–situation pairs" in r.stderr


def test_split_disjoint_stratified(tmp_path, cli):
    out = tmp_path / "splits"
    r = cli("data", "split", sample_path("ja"), "-o", out, "--seed", "3", "--ratios", "0.5,0.25,0.25", "--json")
    assert r.code == 0, r.stderr
    rep = json.loads(r.stdout)
    parts = {s: [json.loads(x) for x in (out / f"{s}.jsonl").read_text(encoding="utf-8").splitlines()]
             for s in ("train", "dev", "test")}
    sits = {s: {r["situation_id"] for r in rows} for s, rows in parts.items()}
    assert not (sits["train"] & sits["dev"]) and not (sits["train"] & sits["test"]) and not (sits["dev"] & sits["test"])
    assert sum(len(v) for v in parts.values()) == 168
    # 2 situations per emotion at 0.5: each emotion has exactly one train situation
    assert Counter(r["emotion"] for r in parts["train"]) == Counter({e: 3 for e in {r["emotion"] for r in parts["train"]}})
    assert len({r["emotion"] for r in parts["train"]}) == 28
    assert rep["splits"]["train"]["situations"] == 28
    r2 = cli("data", "split", sample_path("ja"), "-o", tmp_path / "again", "--seed", "3", "--ratios", "0.5,0.25,0.25")
    assert r2.code == 0 and (tmp_path / "again" / "test.jsonl").read_bytes() == (out / "test.jsonl").read_bytes()


def test_assign_splits_ratios_large():
    sit = {f"s{i}": Counter({f"e{i % 7}": 1}) for i in range(700)}
    a = assign_splits(sit, (0.8, 0.1, 0.1), 0)
    c = Counter(a.values())
    assert c == Counter({"train": 560, "dev": 70, "test": 70})
    for e in range(7):
        ce = Counter(v for k, v in a.items() if int(k[1:]) % 7 == e)
        assert ce == Counter({"train": 80, "dev": 10, "test": 10})


def test_bundled_prints_one_path_by_name(cli):
    r = cli("data", "bundled", "ed-en")
    assert r.code == 0 and r.stdout.strip() == str(sample_path("ed-en"))
    r = cli("data", "bundled")
    assert r.code == 0 and [ln.split() for ln in r.stdout.splitlines()] == [
        ["ja", str(sample_path("ja"))], ["ed-en", str(sample_path("ed-en"))]]  # awk '/^ja/{print $2}' works
    r = cli("data", "bundled", "en")
    assert r.code == 2 and "one of ja, ed-en" in r.stderr and "Traceback" not in r.stderr


def test_sample_more_pairs_than_the_data_has_is_exit_2(cli, tmp_path):
    r = cli("data", "sample", sample_path("ja"), "--n", "100", "--seed", "42", "-o", tmp_path / "x.jsonl")
    assert r.code == 2 and "56 emotion–situation pairs" in r.stderr and not (tmp_path / "x.jsonl").exists()
