"""Metrics benchmarks (prints figures; medians of repeated runs, since the machine is shared):

- response tries on 2,540 responses (en, ja): the fold alone and tokenise + fold; with
  ``--only tries_long`` also a harder workload (longer responses, Zipf words, shared phrases);
- NIDF on 2,540 responses (tokenise + score);
- label BERTScore on 4,125 predictions vs ``bert_score`` on every row, equal values:
  A. encoder already loaded: one model instance shared by both sides, warmed up by one untimed
     run of each side, so neither pays the first-call page-in; runs interleaved; kyokan cold (no cached label
     embeddings), kyokan warm (label embeddings from the cache file of an earlier run), and the
     split of bert_score's time into embedding and matching;
  B. model loading included: each measurement in a fresh process (imports of torch, transformers
     and bert_score done before the clock starts), alternating the sides.

- profiles (``--only profiles``): NIDF, IVA and response tries under each metric profile
  (kyokan, lee2024) on 2,540 × 5 replies (human, baseline, length-controlled, SFT, DPO): the
  full release's replies with ``--release`` pointing at an EmPO checkout; by default the release
  sample's 240 replies per system TILED to 2,540 each (tiling repeats each reply ~10.6 times,
  which changes the folding work, so the tries figure is also given on 2,540 distinct real texts:
  EPITOME's Reddit responses cut to the baseline's mean length). IVA uses the packaged NRC intensity and Warriner V/A for both
  profiles (the NRC-VAD file is research-only and not in the sample); the lookups cost the same.

Run: HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv/bin/python bench/metrics_bench.py [--reps N]
     [--only tries,tries_long,nidf,bertscore,profiles] [--threads N] [--release DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np

from kyokan.metrics.nidf import build_table, score_tokens
from kyokan.metrics.tries import response_tries
from kyokan.taxonomy import get_taxonomy
from kyokan.text import tokens


def synthetic_responses(n: int, lang: str, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    if lang == "ja":
        openers = ["それは大変でしたね。", "お気持ちお察しします。", "よかったですね！", "それはつらいですね。", "心配ですね。"]
        bodies = ["ご家族には相談されましたか？", "無理をしないでくださいね。", "少し休めるといいですね。",
                  "先生に話してみるのはどうでしょう。", "一緒に考えましょう。", "本当によく頑張りましたね。"]
        words = [*list("あいうえおかきくけこさしすせそたちつてとなにぬねの"), "病院", "先生", "家族", "仕事", "試験", "手術", "不安", "嬉しい"]
        return [rng.choice(openers) + rng.choice(bodies) if rng.random() < 0.5 else
                "".join(rng.choice(words) for _ in range(rng.randint(8, 40))) + "。" for _ in range(n)]
    openers = ["I'm so sorry to hear that.", "That sounds really hard.", "Oh no!", "Wow, that's great news!",
               "I understand how you feel.", "That must have been scary."]
    mids = ["Did you talk to your {x} about it?", "How is your {x} doing now?", "I hope your {x} gets better soon.",
            "Have you told your {x}?", "What did your {x} say?"]
    xs = ["mom", "dad", "friend", "boss", "doctor", "sister", "dog", "neighbor", "teacher", "partner"]
    vocab = ["the", "a", "of", "to", "and", "in", "that", "it", "is", "was", "for", "on", "with", "as", "at", "by", "this", "be", "not", "are", "from", "or", "have", "an", "they", "which", "one", "you", "were", "her", "all", "she", "there", "would", "their", "we", "him", "been", "has", "when", "who", "will", "more", "no", "if", "out", "so", "said", "what", "up", "its", "about", "into", "than", "them", "can", "only", "other", "new", "some", "could", "time", "these", "two", "may", "then", "do", "first", "any", "my", "now"]
    return [rng.choice(openers) + " " + rng.choice(mids).format(x=rng.choice(xs)) if rng.random() < 0.5 else
            " ".join(rng.choice(vocab) for _ in range(rng.randint(5, 25))) for _ in range(n)]


def _median_time(fn: Callable[[], Any], reps: int) -> tuple[float, list[float], Any]:
    times, out = [], None
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times, out


def _fmt(times: list[float]) -> str:
    return "[" + ", ".join(f"{x:.3f}" for x in times) + "]"


def label_rows(n: int = 4125) -> tuple[list[str], list[str]]:
    names = get_taxonomy().names("ja")
    rng = random.Random(0)
    gold = [rng.choice(names) for _ in range(n)]
    pred = [g if rng.random() < 0.55 else rng.choice(names) for g in gold]
    return pred, gold


def _maxdiff(res: Any, P: Any, R: Any, F: Any) -> float:
    return max(float(np.abs(res.precision - P.numpy()).max()), float(np.abs(res.recall - R.numpy()).max()),
               float(np.abs(res.f1 - F.numpy()).max()))


def bench_label_bertscore_loaded(reps: int) -> None:
    """A: both sides with the encoder loaded (one shared, warmed-up model instance)."""
    from collections import defaultdict

    from bert_score import BERTScorer
    from bert_score.utils import get_bert_embedding

    from kyokan.metrics.bertscore import BertScorer

    pred, gold = label_rows()
    probe = BertScorer()
    ref = BERTScorer(model_type=probe.model_type, num_layers=probe.num_layers, batch_size=64)

    def kyokan_scorer(cache: str) -> BertScorer:
        s = BertScorer(embedding_cache=cache)
        s.use_encoder(ref._model, ref._tokenizer)  # the same loaded encoder as bert_score
        return s

    # warm-up, untimed: page the weights in and let the kernels see these shapes once on each side
    ref.score(pred, gold)
    with tempfile.TemporaryDirectory() as cache:
        kyokan_scorer(cache).score(pred, gold)

    tok = ref._tokenizer
    idf: defaultdict[int, float] = defaultdict(lambda: 1.0)
    idf[tok.sep_token_id] = 0
    idf[tok.cls_token_id] = 0
    sentences = sorted(set(gold + pred), key=lambda x: len(x.split(" ")), reverse=True)  # as bert_score does
    t_bs, t_emb, t_cold, t_warm, t_match = [], [], [], [], []
    diffs = []
    res_cold = res_warm = None
    for _ in range(reps):  # interleaved, so load changes hit every side alike
        t = time.perf_counter()
        P, R, F = ref.score(pred, gold)
        t_bs.append(time.perf_counter() - t)
        t = time.perf_counter()
        get_bert_embedding(sentences, ref._model, tok, idf, device="cpu")
        t_emb.append(time.perf_counter() - t)
        with tempfile.TemporaryDirectory() as cache:
            cold = kyokan_scorer(cache)
            t = time.perf_counter()
            res_cold = cold.score(pred, gold)
            t_cold.append(time.perf_counter() - t)
            t = time.perf_counter()
            cold.score(pred, gold)  # embeddings in memory: the matching alone
            t_match.append(time.perf_counter() - t)
            warm = BertScorer(embedding_cache=cache)  # a later run: label embeddings from the cache file
            t = time.perf_counter()
            res_warm = warm.score(pred, gold)
            t_warm.append(time.perf_counter() - t)
            assert warm._model is None, "the warm run should not need the encoder"
        diffs += [_maxdiff(res_cold, P, R, F), _maxdiff(res_warm, P, R, F)]
    assert res_cold is not None
    m = statistics.median
    bs, emb, cold_t, warm_t, match = m(t_bs), m(t_emb), m(t_cold), m(t_warm), m(t_match)
    import torch

    print(f"label BERTScore, {len(gold)} predictions ({res_cold.distinct_pairs} distinct pairs, "
          f"{len(set(pred + gold))} distinct label words), medians of {reps}, torch threads {torch.get_num_threads()}")
    print("  A. encoder loaded (one shared model instance, warmed up):")
    print(f"    bert_score.BERTScorer.score, every row:            {bs:.3f} s {_fmt(t_bs)}")
    print(f"      of which embedding the {len(sentences)} distinct words:        {emb:.3f} s {_fmt(t_emb)}"
          f"  -> matching {len(gold)} rows ~{max(bs - emb, 0.0):.3f} s")
    print(f"    kyokan cold (no cached embeddings):               {cold_t:.3f} s {_fmt(t_cold)}  -> {bs / cold_t:.1f}x")
    print(f"    kyokan warm (label-embedding cache file):         {warm_t:.3f} s {_fmt(t_warm)}  -> {bs / warm_t:.1f}x")
    print(f"    kyokan matching only (embeddings in memory):      {match:.4f} s {_fmt(t_match)}"
          f"  -> {max(bs - emb, 0.0) / match:.1f}x vs bert_score's matching")
    print(f"    max |kyokan - bert_score| over P, R, F1, cold and warm: {max(diffs):.2e} "
          f"(F1 mean {res_cold.f1.mean():.4f})")


def _child(mode: str, cache: str) -> None:
    """One measurement with model loading included, in a fresh process (imports before the clock)."""
    import bert_score  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401

    from kyokan.metrics.bertscore import BertScorer
    from kyokan.metrics.encoder import default_encoder_dir

    pred, gold = label_rows()
    path = str(default_encoder_dir())
    t = time.perf_counter()
    if mode == "bert_score":
        from bert_score import BERTScorer

        P, _, _ = BERTScorer(model_type=path, num_layers=12, batch_size=64).score(pred, gold)
        f = P.numpy()
    else:
        s = BertScorer(embedding_cache=cache)
        f = s.score(pred, gold).precision
    dt = time.perf_counter() - t
    print(json.dumps({"mode": mode, "seconds": dt, "p_sum": float(np.sum(f))}))


def bench_label_bertscore_with_load(reps: int, threads: int = 0) -> None:
    """B: model loading included, fresh processes."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    times: dict[str, list[float]] = {"bert_score": [], "cold": [], "warm": []}
    with tempfile.TemporaryDirectory() as base:
        for rep in range(reps):
            warm_cache = os.path.join(base, f"warm{rep}")
            for mode, cache in (("bert_score", ""), ("cold", os.path.join(base, f"cold{rep}")), ("cold", warm_cache),
                                ("warm", warm_cache)):
                r = subprocess.run([sys.executable, __file__, "--threads", str(threads), "--child", mode, cache],
                                   capture_output=True, text=True, env=env, check=True)
                d = json.loads(r.stdout.strip().splitlines()[-1])
                if cache != warm_cache or mode == "warm":  # the cold run filling warm_cache is not timed
                    times[mode].append(d["seconds"])
    m = statistics.median
    bs, cold, warm = m(times["bert_score"]), m(times["cold"]), m(times["warm"])
    print(f"  B. model loading included (fresh process each, imports excluded), medians of {reps}:")
    print(f"    bert_score.BERTScorer(...) + .score, every row:    {bs:.3f} s {_fmt(times['bert_score'])}")
    print(f"    kyokan cold (loads the encoder, embeds):           {cold:.3f} s {_fmt(times['cold'])}  -> {bs / cold:.1f}x")
    print(f"    kyokan warm (cache file; encoder never loaded):    {warm:.3f} s {_fmt(times['warm'])}  -> {bs / warm:.1f}x")


def bench_tries(reps: int, n: int = 2540) -> None:
    print(f"response tries, {n} responses, medians of {reps}:")
    for lang in ("en", "ja"):
        texts = synthetic_responses(n, lang)
        t_tok, tok_times, toks = _median_time(lambda texts=texts, lang=lang: [tokens(s, lang) for s in texts], reps)
        t_fold, fold_times, st = _median_time(lambda toks=toks: response_tries(toks), reps)
        print(f"  {lang}: fold {t_fold:.3f} s {_fmt(fold_times)}; tokenise {t_tok:.3f} s {_fmt(tok_times)}; "
              f"tokenise + fold {t_tok + t_fold:.3f} s  ({sum(map(len, toks))} tokens, templates={st.templates} "
              f"span/total={st.span_nodes}/{st.total_nodes} root={st.root_children} "
              f"ratio={st.compression_ratio:.3f} folds={st.folds})")


def long_token_lists(n: int = 2540, seed: int = 5) -> list[list[str]]:
    """A harder tries workload: ~49 tokens per response from a Zipf vocabulary of 800 words, half
    of the text from 60 recurring phrases (about 124,000 tokens for 2,540 responses)."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(800)]
    weights = [1 / (i + 1) for i in range(800)]
    phrases = [rng.choices(vocab, weights, k=rng.randint(4, 15)) for _ in range(60)]
    out = []
    for _ in range(n):
        s: list[str] = []
        while len(s) < rng.randint(30, 70):
            s += rng.choice(phrases) if rng.random() < 0.5 else rng.choices(vocab, weights, k=rng.randint(1, 6))
        out.append(s)
    return out


def bench_tries_long(reps: int) -> None:
    toks = long_token_lists()
    dt, times, st = _median_time(lambda: response_tries(toks), reps)
    print(f"response tries, harder workload ({len(toks)} responses, {sum(map(len, toks))} tokens, Zipf words + "
          f"shared phrases), medians of {reps}: fold {dt:.3f} s {_fmt(times)}  folds={st.folds} "
          f"ratio={st.compression_ratio:.3f}")


def bench_nidf(reps: int, n: int = 2540) -> None:
    print(f"NIDF, {n} responses (tokenise + score), medians of {reps}:")
    for lang in ("en", "ja"):
        corpus = synthetic_responses(5 * n, lang, seed=1)
        resp = synthetic_responses(n, lang, seed=2)
        table = build_table(corpus, lang)
        dt, times, vals = _median_time(lambda resp=resp, table=table, lang=lang:
                                       [score_tokens(table, tokens(r, lang))[0] for r in resp], reps)
        mean = float(np.mean([v for v in vals if v is not None]))
        print(f"  {lang}: {dt:.3f} s {_fmt(times)}  (table of {len(corpus)} utterances) mean={mean:.4f}")


def release_workload(root: str, n: int = 2540) -> dict[str, tuple[list[str], list[str]]]:
    """system → (replies, contexts), each tiled to ``n`` when the release holds fewer (the sample's
    240 rows); the full release's 2,540 rows are used as they are."""
    from pathlib import Path

    from kyokan.data.empo import SYSTEM_FILES, read_predictions

    out: dict[str, tuple[list[str], list[str]]] = {}
    for system in ("human", "baseline", "lenctl", "sft", "dpo"):
        preds = read_predictions(Path(root) / "predictions" / SYSTEM_FILES["baseline" if system == "human" else system])
        reps = [p.gold if system == "human" else p.reply for p in preds]
        ctxs = [p.context for p in preds]
        out[system] = ([reps[i % len(reps)] for i in range(n)], [ctxs[i % len(ctxs)] for i in range(n)])
    return out


def _release_rows(root: str) -> int:
    from pathlib import Path

    from kyokan.data.empo import SYSTEM_FILES, read_predictions

    return len(read_predictions(Path(root) / "predictions" / SYSTEM_FILES["baseline"]))


def bench_profiles(root: str, reps: int) -> None:
    import csv as _csv
    from pathlib import Path

    from kyokan.metrics.nidf import CountTable
    from kyokan.metrics.nidf import score_tokens as _score
    from kyokan.metrics.profiles import get_profile
    from kyokan.metrics.response.iva import EnglishIVA
    from kyokan.metrics.tokenize import cached_tokens
    from kyokan.metrics.treebank import word_tokenize

    work = release_workload(root)
    table = CountTable.load(Path(root) / "data/empathy_datasets/empathetic_dialogues/ed_counts.pkl")
    found = _release_rows(root)
    how = "as released" if found >= 2540 else f"tiled from the {found}-row release sample"
    print(f"profiles: 2,540 x 5 replies, {how} ({sum(len(v[0]) for v in work.values())} replies)")
    for name in ("kyokan", "lee2024"):
        prof = get_profile(name)
        iva = EnglishIVA(None, prof)

        def clear() -> None:
            word_tokenize.cache_clear()
            cached_tokens.cache_clear()

        def nidf(prof: Any = prof) -> float:
            clear()
            vals = [_score(table, prof.tokens(r, "en"), prof.nidf_unknown)[0] for rs, _ in work.values() for r in rs]
            return sum(v for v in vals if v is not None) / len(vals)

        def ivaf(iva: Any = iva) -> int:
            clear()
            return sum(1 for rs, cs in work.values() for r, c in zip(rs, cs, strict=True)
                       if iva.scores(c)["intensity"] is not None and iva.scores(r)["intensity"] is not None)

        t_n, ts_n, mean = _median_time(nidf, reps)
        t_i, ts_i, _ = _median_time(ivaf, reps)
        print(f"  {name:8s} NIDF (tokenise + score, 12,700 replies): {t_n:.2f} s {_fmt(ts_n)}  mean {mean:.4f}")
        print(f"  {name:8s} IVA (tokenise + lookups, 12,700 pairs):  {t_i:.2f} s {_fmt(ts_i)}")
        for system, (rs, _) in work.items():
            clear()
            t_t, ts_t, st = _median_time(lambda rs=rs, prof=prof: prof.tries(rs, "en"), max(1, min(reps, 3)))
            print(f"  {name:8s} tries {system:8s} (2,540): {t_t:.2f} s {_fmt(ts_t)}  "
                  f"templates={st['templates']} span_nodes={st['span_nodes']} total_nodes={st['total_nodes']}")
    epi = Path(root) / "data/empathy_datasets/epitome"
    texts: list[str] = []
    for split in ("train", "val", "test"):
        with open(epi / f"{split}.csv", encoding="utf-8", newline="") as f:
            texts += [r["response_post"] for r in _csv.DictReader(f)]
    texts = [" ".join(t.split()[:30]) for t in texts[:2540]]
    for name in ("kyokan", "lee2024"):
        prof = get_profile(name)
        word_tokenize.cache_clear()
        t_t, ts_t, st = _median_time(lambda prof=prof: prof.tries(texts, "en"), 1)
        print(f"  {name:8s} tries on {len(texts)} distinct EPITOME responses (<=30 words): {t_t:.2f} s  "
              f"folds={st['folds']} total_nodes={st['total_nodes']}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--load-reps", type=int, default=3)
    ap.add_argument("--only", default="tries,nidf,bertscore")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads on both sides (0: torch's default); 1 is steadier on a busy machine")
    ap.add_argument("--child", nargs=2)
    ap.add_argument("--release", default=os.environ.get("KYOKAN_EMPO_RELEASE")
                    or os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "empo-release-sample"))
    a = ap.parse_args()
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    if a.child:
        _child(*a.child)
        return
    only = set(a.only.split(","))
    if "tries" in only:
        bench_tries(a.reps)
    if "tries_long" in only:  # not in the default set: ~6 s per run
        bench_tries_long(max(1, min(a.reps, 3)))
    if "nidf" in only:
        bench_nidf(a.reps)
    if "profiles" in only:
        bench_profiles(a.release, a.reps)
    if "bertscore" in only:
        bench_label_bertscore_loaded(a.reps)
        bench_label_bertscore_with_load(a.load_reps, a.threads)


if __name__ == "__main__":
    main()
