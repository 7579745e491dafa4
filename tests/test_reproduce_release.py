"""Readers for EmPO's release (kyokan.data.empo), `kyokan data import` and `kyokan human import
--format empo`, checked against pandas reading the same files the way EmPO's code did."""

from __future__ import annotations

import json

import pytest

from kyokan.data.empo import (
    SYSTEM_FILES,
    parse_zephyr,
    per_item_means,
    read_he_data,
    read_predictions,
)


@pytest.mark.parametrize("system", sorted(SYSTEM_FILES))
def test_prediction_files_read_as_pandas_reads_them(empo_release, system):
    import pandas as pd

    path = empo_release / "predictions" / SYSTEM_FILES[system]
    rows = read_predictions(path)
    df = pd.read_csv(path, sep="~")
    assert len(rows) == len(df)
    for col, attr in (("gens", "reply"), ("gen_targets", "gold"), ("prevs", "context"), ("chat_templates", "prompt")):
        assert [getattr(r, attr) for r in rows] == list(df[col]), col
    for m in ("ER", "EX", "IP"):
        assert [r.levels[m.lower()][0] for r in rows] == list(df[f"pred_{m}_scores"].astype(int))
        assert [r.levels[m.lower()][1] for r in rows] == list(df[f"gt_{m}_scores"].astype(int))
    assert [r.index for r in rows] == list(df.iloc[:, 0])
    first = rows[0]
    assert first.turns[0]["role"] == "speaker" and first.turns[-1]["role"] == "speaker"
    assert "<|" not in " ".join(t["text"] for t in first.turns)  # tags mentioned in the system prompt are not turns
    if system == "lenctl":
        assert "shortgens" in first.extra  # its extra column is kept


def test_zephyr_template_hand_worked():
    sys_, turns = parse_zephyr("<|system|>\nBe kind, tags <|user|>, or <|assistant|>.</s>\n<|user|>\nHi</s>\n"
                               "<|assistant|>\nHello</s>\n<|user|>\nI'm sad\nvery.</s>\n<|assistant|>\n")
    assert sys_ == "Be kind, tags <|user|>, or <|assistant|>."
    assert turns == [{"role": "speaker", "text": "Hi"}, {"role": "listener", "text": "Hello"},
                     {"role": "speaker", "text": "I'm sad\nvery."}]


def test_bad_prediction_file_is_one_clear_line(tmp_path, cli):
    p = tmp_path / "preds.txt"
    p.write_text("~chat_templates~gen_targets~prevs~emotions~gens~pred_IP_scores~pred_EX_scores~pred_ER_scores~"
                 "gt_IP_scores~gt_EX_scores~gt_ER_scores\n0~t~g~p~sad~r~0~1~7~0~0~0\n", encoding="utf-8")
    r = cli("data", "import", p, "--preset", "empo", "-o", tmp_path / "o.jsonl")
    assert r.code == 2 and f"{p}:2: pred_ER_scores:" in r.stderr and "Traceback" not in r.stderr


def test_he_data_per_item_means_equal_pandas(empo_release):
    import pandas as pd

    ratings = read_he_data(empo_release / "data" / "he_data.csv")
    df = pd.read_csv(empo_release / "data" / "he_data.csv", index_col=0)
    assert len(ratings) == len(df)
    means = per_item_means(ratings)
    ref = df.groupby(["model", "ED_index"])[["Dim1", "Dim2", "Dim3", "Dim4"]].mean()
    src = {"zephyr_base": "baseline", "zephyr_base_output_limit": "lenctl", "SFT": "sft", "zephyr_dpo": "dpo",
           "human_targets": "human"}
    for (model, ed), row in ref.iterrows():
        got = means[src[model]][int(ed)]
        assert got["emotion_understanding"] == pytest.approx(row["Dim1"])
        assert got["conversational_engagingness"] == pytest.approx(row["Dim4"])


def test_human_import_without_key(empo_release, tmp_path, cli):
    out = tmp_path / "human"
    r = cli("human", "import", empo_release / "data" / "he_data.csv", "--format", "empo", "-o", out)
    assert r.code == 0, r.stderr
    s = json.loads((out / "summary.json").read_text())
    assert set(s["per_source"]) == {"human", "baseline", "lenctl", "sft", "dpo"}
    items = [json.loads(x) for x in (out / "per_item.jsonl").read_text().splitlines()]
    assert len(items) == s["items"] and all(i["n_raters"] == 3 for i in items)
    rows = [json.loads(x) for x in (out / "ratings.jsonl").read_text().splitlines()]
    assert rows[0]["source"] in s["per_source"] and "emotion_understanding" in rows[0]["scores"]
    assert cli("human", "import", empo_release / "data" / "he_data.csv", "-o", out).code != 0  # no key, no format


def test_he_data_bad_slider(tmp_path, cli):
    p = tmp_path / "he.csv"
    p.write_text(",sample_index,Dim1,Dim2,Dim3,Dim4,Dim5,annotator,ED_index,model\n0,0,101,5,5,5,1,7,3,SFT\n", encoding="utf-8")
    r = cli("human", "import", p, "--format", "empo", "-o", tmp_path / "o")
    assert r.code == 2 and f"{p}:2: Dim1: 101 is outside 0-100" in r.stderr


def test_data_import_column_map_csv_tsv_jsonl(tmp_path, cli):
    rows = [("q1", "That sounds hard.", "I failed.", "Oh no!"), ("q2", "Congrats!", "I passed.", "Yay!")]
    csvp = tmp_path / "a.csv"
    csvp.write_text("qid,out,prompt,gold\n" + "".join(f'{a},"{b}",{c},{d}\n' for a, b, c, d in rows), encoding="utf-8")
    tsv = tmp_path / "a.tsv"
    tsv.write_text("qid\tout\tprompt\tgold\n" + "".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")
    jl = tmp_path / "a.jsonl"
    jl.write_text("".join(json.dumps({"qid": a, "x": {"out": b}, "prompt": c, "gold": d}) + "\n" for a, b, c, d in rows), encoding="utf-8")
    for src, resp in ((csvp, "out"), (tsv, "out"), (jl, "x.out")):
        o = tmp_path / f"{src.suffix[1:]}.jsonl"
        r = cli("data", "import", src, "--map", f"id=qid,response={resp},context=prompt,reference=gold", "-o", o)
        assert r.code == 0, r.stderr
        got = [json.loads(x) for x in o.read_text().splitlines()]
        assert [(g["id"], g["response"], g["context"], g["reference"]) for g in got] == rows
    r = cli("data", "import", csvp, "--map", "response=nope", "-o", tmp_path / "x.jsonl")
    assert r.code == 2 and f"{csvp}:2: nope: column not in the file" in r.stderr


def test_data_import_dialogues_with_taxonomy(tmp_path, cli):
    p = tmp_path / "d.csv"
    p.write_text("prompt,answer,label\nI felt guilty.,Why?,guilty\n", encoding="utf-8")
    bad = cli("data", "import", p, "--as", "dialogues", "--map", "context=prompt,reply=answer,emotion=label",
              "-o", tmp_path / "x.jsonl")
    assert bad.code == 2 and "emotion" in bad.stderr  # 'guilty' is not a GoEmotions label
    ok = cli("data", "import", p, "--as", "dialogues", "--map", "context=prompt,reply=answer,emotion=label",
             "-t", "ed32", "-o", tmp_path / "d.jsonl")
    assert ok.code == 0, ok.stderr
    d = json.loads((tmp_path / "d.jsonl").read_text())
    assert d["emotion"] == "guilty" and [t["role"] for t in d["turns"]] == ["speaker", "listener"]
