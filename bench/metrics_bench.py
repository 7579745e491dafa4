"""Metrics benchmarks (prints figures): label BERTScore on 4,125 predictions vs bert_score on every
row (values must be equal), response tries on 2,540 responses, NIDF on 2,540 responses.

Run: HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv/bin/python bench/metrics_bench.py
"""

from __future__ import annotations

import os
import random
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np

from kyokan.metrics.bertscore import BertScorer
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


def bench_label_bertscore(n: int = 4125) -> None:
    from bert_score import BERTScorer

    names = get_taxonomy().names("ja")
    rng = random.Random(0)
    gold = [rng.choice(names) for _ in range(n)]
    pred = [g if rng.random() < 0.55 else rng.choice(names) for g in gold]
    with tempfile.TemporaryDirectory() as cache:
        ours = BertScorer(embedding_cache=cache)
        ours.load()
        t = time.perf_counter()
        r_cold = ours.score(pred, gold)
        cold = time.perf_counter() - t
        warm_scorer = BertScorer(embedding_cache=cache)  # a later run: label embeddings from the cache
        warm_scorer.load()
        t = time.perf_counter()
        r_warm = warm_scorer.score(pred, gold)
        warm = time.perf_counter() - t
    ref = BERTScorer(model_type=ours.model_type, num_layers=ours.num_layers, batch_size=64)
    t = time.perf_counter()
    P, R, F = ref.score(pred, gold)
    base = time.perf_counter() - t
    diff = max(float(np.abs(r_cold.precision - P.numpy()).max()), float(np.abs(r_cold.recall - R.numpy()).max()),
               float(np.abs(r_cold.f1 - F.numpy()).max()), float(np.abs(r_warm.f1 - F.numpy()).max()))
    print(f"label BERTScore, {n} predictions ({r_cold.distinct_pairs} distinct pairs, {len(set(pred + gold))} distinct words)")
    print(f"  bert_score.BERTScorer.score on every row (model loaded): {base:.3f} s")
    print(f"  kyokan, distinct pairs, cold (embeds the label words):  {cold:.3f} s  -> {base / cold:.1f}x")
    print(f"  kyokan, distinct pairs, label embeddings cached:        {warm:.3f} s  -> {base / warm:.1f}x")
    print(f"  max |difference| vs bert_score: {diff:.2e}  (F1 mean {r_cold.f1.mean():.4f})")


def bench_tries(n: int = 2540) -> None:
    for lang in ("en", "ja"):
        toks = [tokens(s, lang) for s in synthetic_responses(n, lang)]
        t = time.perf_counter()
        st = response_tries(toks)
        dt = time.perf_counter() - t
        print(f"tries, {n} {lang} responses ({sum(map(len, toks))} tokens): {dt:.3f} s  "
              f"templates={st.templates} span/total={st.span_nodes}/{st.total_nodes} root={st.root_children} "
              f"ratio={st.compression_ratio:.3f} folds={st.folds}")


def bench_nidf(n: int = 2540) -> None:
    for lang in ("en", "ja"):
        corpus = synthetic_responses(5 * n, lang, seed=1)
        resp = synthetic_responses(n, lang, seed=2)
        table = build_table(corpus, lang)
        t = time.perf_counter()
        vals = [score_tokens(table, tokens(r, lang))[0] for r in resp]
        dt = time.perf_counter() - t
        mean = float(np.mean([v for v in vals if v is not None]))
        print(f"NIDF, {n} {lang} responses (tokenise + score; table of {len(corpus)} utterances): {dt:.3f} s  mean={mean:.4f}")


if __name__ == "__main__":
    bench_tries()
    bench_nidf()
    bench_label_bertscore()
