"""Constrained vs free decoding on the packaged models, the grammar engines compared, and the demo's
judge stage before/after (prints its figures; timings on a shared machine are noisy: medians).

    OMP_NUM_THREADS=1 .venv/bin/python bench/models_constrained.py engines      # llguidance (+ xgrammar if installed)
    OMP_NUM_THREADS=1 .venv/bin/python bench/models_constrained.py tokens [--models smollm2-135m gemma3-270m]
    OMP_NUM_THREADS=1 .venv/bin/python bench/models_constrained.py judge [--n 30]

- ``engines``: import time, tokenizer index, schema compile and the per-token mask cost of each
  engine on SmolLM2's 49k vocabulary, walking the tokens of a valid all-in-one judge answer.
- ``tokens``: decoding speed of the same greedy generation free and under a JSON schema (the
  judge's per-metric answer, its rationale held to 400–600 characters so that both runs decode all
  ``--new-tokens``), median of ``--repeats`` runs; tokens/s over the whole call, and decode-only
  tokens/s (the prompt's prefill, timed with one new token, subtracted).
- ``judge``: the demo's judge stage (packaged SmolLM2, all-in-one, ``emplifai7-brief``, English
  prompts, batches of 15) on ``--n`` bundled dialogues: before (free decoding, 64 new tokens, as the
  demo ran it) and after (decoded under the scores-only schema, 96 new tokens): wall time and how
  many of the 7·n scores came out.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _quiet() -> None:
    from transformers.utils import logging as tlog

    tlog.set_verbosity_error()
    tlog.disable_progress_bar()


def _answer_tokens(tok: object) -> tuple[dict, list[int]]:
    from kyokan.judge.prompts import all_in_one_schema
    from kyokan.judge.rubric import get_rubric

    rub = get_rubric()
    schema = all_in_one_schema(rub)
    ans = json.dumps({"scores": {m: {"rationale": "The responder acknowledges the fear and offers support.",
                                     "score": 3} for m in rub.metric_ids}})
    return schema, tok(ans, add_special_tokens=False)["input_ids"]  # type: ignore[operator]


def engines(_a: argparse.Namespace) -> None:
    import torch
    from transformers import AutoTokenizer

    from kyokan.models.packaged import ensure_local

    _quiet()
    tok = AutoTokenizer.from_pretrained(ensure_local("smollm2-135m"))
    vocab = 49152
    schema, ids = _answer_tokens(tok)
    logits = torch.zeros(1, vocab)
    print(f"answer: {len(ids)} tokens; vocabulary {vocab}; load average {os.getloadavg()[0]:.1f}")

    def report(name: str, t_import: float, t_index: float, t_compile: float, steps: list[float]) -> None:
        print(f"{name:11s} import {t_import:6.2f} s  tokenizer index {t_index:5.2f} s  compile {t_compile * 1e3:6.1f} ms  "
              f"mask median {statistics.median(steps) * 1e3:.3f} ms/token (max {max(steps) * 1e3:.1f})")

    t = time.perf_counter()
    import llguidance
    import llguidance.hf
    import numpy as np

    t_import = time.perf_counter() - t
    t = time.perf_counter()
    lt = llguidance.hf.from_tokenizer(tok, n_vocab=vocab)
    t_index = time.perf_counter() - t
    from kyokan.models.constrain import JSON_OPTIONS

    t = time.perf_counter()
    m = llguidance.LLMatcher(lt, llguidance.LLMatcher.grammar_from_json_schema(schema, defaults=JSON_OPTIONS))
    t_compile = time.perf_counter() - t
    steps = []
    for i in ids:
        t = time.perf_counter()
        bits = np.unpackbits(np.frombuffer(m.compute_bitmask(), dtype=np.uint8), bitorder="little")[:vocab]
        x = logits.clone()
        x[0, torch.from_numpy(~bits.astype(bool))] = float("-inf")
        steps.append(time.perf_counter() - t)
        assert torch.isfinite(x[0, i]) and m.consume_token(i), m.get_error()
    report("llguidance", t_import, t_index, t_compile, steps)
    try:
        t = time.perf_counter()
        import xgrammar as xgr
    except ImportError:
        print("xgrammar    not installed (pip install xgrammar — it pulls triton, a 1 GB wheel)")
        return
    t_import = time.perf_counter() - t
    t = time.perf_counter()
    info = xgr.TokenizerInfo.from_huggingface(tok, vocab_size=vocab, stop_token_ids=[tok.eos_token_id])
    t_index = time.perf_counter() - t
    t = time.perf_counter()
    g = xgr.GrammarCompiler(info).compile_json_schema(json.dumps(schema), any_whitespace=False)
    t_compile = time.perf_counter() - t
    xm = xgr.GrammarMatcher(g)
    bm = xgr.allocate_token_bitmask(1, vocab)
    steps = []
    for i in ids:
        t = time.perf_counter()
        xm.fill_next_token_bitmask(bm, 0)
        x = logits.clone()
        xgr.apply_token_bitmask_inplace(x, bm)
        steps.append(time.perf_counter() - t)
        assert torch.isfinite(x[0, i]) and xm.accept_token(i)
    report("xgrammar", t_import, t_index, t_compile, steps)


def tokens(a: argparse.Namespace) -> None:
    import torch

    from kyokan.judge.prompts import per_metric_messages, score_schema
    from kyokan.judge.rubric import get_rubric
    from kyokan.models import GenerationParams, load_model
    _quiet()
    rub = get_rubric("emplifai7-brief")
    rec = _records(1)[0]
    msgs = per_metric_messages(rec, rub, rub.metric_ids[0], "en")
    schema = score_schema(rub, rationale_chars=600)
    schema["properties"]["rationale"]["minLength"] = 400  # never done within --new-tokens: equal lengths
    print(f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}; "
          f"{a.new_tokens} new tokens max, greedy, median of {a.repeats}")
    for name in a.models:
        m = load_model(name, batch_size=1)
        m.generate(msgs, GenerationParams(max_new_tokens=4, json_schema=schema))  # warm: grammar index, caches
        for label, js in (("free", None), ("constrained", schema)):
            rates, dec, n_tok = [], [], 0
            for _ in range(a.repeats):
                t = time.perf_counter()
                m.generate(msgs, GenerationParams(max_new_tokens=1, json_schema=js))
                prefill = time.perf_counter() - t
                t = time.perf_counter()
                c = m.generate(msgs, GenerationParams(max_new_tokens=a.new_tokens, json_schema=js))
                dt = time.perf_counter() - t
                n_tok = c.usage.completion_tokens
                rates.append(n_tok / dt)
                dec.append((n_tok - 1) / max(1e-9, dt - prefill))
            print(f"{name:13s} {label:11s} {statistics.median(rates):6.2f} tokens/s per call, "
                  f"{statistics.median(dec):6.2f} tokens/s decoding  ({n_tok} tokens, prompt "
                  f"{c.usage.prompt_tokens})")
        del m


def judge(a: argparse.Namespace) -> None:
    import asyncio

    from kyokan.judge import JudgeConfig, get_rubric
    from kyokan.judge.engine import Judge
    from kyokan.models import load_model

    _quiet()
    recs = _records(a.n)
    rub = get_rubric("emplifai7-brief")
    model = load_model("smollm2-135m", batch_size=15)
    print(f"{len(recs)} dialogues, all-in-one, emplifai7-brief, English prompts, batches of 15; "
          f"load average {os.getloadavg()[0]:.1f}")
    for label, cfg in (("before (free, 64 tokens)", JudgeConfig(lang="en", all_in_one=True, structured=False,
                                                                 max_new_tokens=64, max_reasks=0, concurrency=15)),
                       ("after (schema, 96 tokens)", JudgeConfig(lang="en", all_in_one=True, max_new_tokens=96,
                                                                 max_reasks=0, concurrency=15, rationale=False))):
        async def run(cfg: JudgeConfig = cfg) -> list[dict]:
            j = Judge([model], rub, cfg)
            return [r async for r in j.astream(recs)]

        t = time.perf_counter()
        rows = asyncio.run(run())
        dt = time.perf_counter() - t
        scored = sum(1 for r in rows for v in r["scores"].values() if v is not None)
        with_p = sum(1 for r in rows for v in (r.get("expected_scores") or {}).values() if v is not None)
        print(f"{label:26s} {dt:7.1f} s  scores {scored}/{7 * len(rows)}  expected scores {with_p}  "
              f"tokens out {sum(r['usage']['completion_tokens'] for r in rows)}")


def _records(n: int) -> list[dict]:
    from kyokan.data.samples import sample_path

    with open(sample_path("ja"), encoding="utf-8") as f:
        rows = [json.loads(x) for x in f if x.strip()]
    for r in rows:
        r.setdefault("meta", {})["generation"] = {"model": "bundled", "format_ok": True}
    return rows[:n]


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="what", required=True)
    sub.add_parser("engines")
    t = sub.add_parser("tokens")
    t.add_argument("--models", nargs="*", default=["smollm2-135m"])
    t.add_argument("--new-tokens", type=int, default=64)
    t.add_argument("--repeats", type=int, default=3)
    j = sub.add_parser("judge")
    j.add_argument("--n", type=int, default=30)
    a = ap.parse_args()
    {"engines": engines, "tokens": tokens, "judge": judge}[a.what](a)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
