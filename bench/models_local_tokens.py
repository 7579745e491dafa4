"""Load time and generation speed of the packaged local models on this machine (CPU).

For each model: the first-time GGUF → safetensors conversion time (from the cache manifest),
the load time from the cache, and tokens/s for one sequence and for a batch (greedy; the model
may stop early at its end-of-turn token, so tokens are counted, not assumed).

    OMP_NUM_THREADS=1 .venv/bin/python bench/models_local_tokens.py [--models smollm2-135m gemma3-270m]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

PROMPTS = {
    "en": ["I have my first chemotherapy session tomorrow and I can't stop shaking.",
           "My father was finally discharged from the hospital today.",
           "The doctor said my blood sugar is under control for the first time in years.",
           "I keep forgetting to take my pills and my daughter is angry with me."],
    "ja": ["明日から初めての抗がん剤治療で、不安で眠れません。", "父が今日やっと退院しました。",
           "何年ぶりかで血糖値が安定していると言われました。", "薬を飲み忘れてばかりで、娘に怒られてしまいました。"],
}


def main() -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401 - import time is not load time
    from transformers.utils import logging as tlog

    from kyokan.models import GenerationParams, load_model
    from kyokan.models.packaged import PACKAGED, ensure_local, manifest

    tlog.set_verbosity_error()
    tlog.disable_progress_bar()
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="*", default=["smollm2-135m", "gemma3-270m"])
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--batch", type=int, default=4)
    a = ap.parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, cores {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    for name in a.models:
        pm = PACKAGED[name]
        ensure_local(name)
        conv = (manifest(name) or {}).get("conversion_seconds")
        t0 = time.perf_counter()
        model = load_model(name, batch_size=a.batch)
        load_s = time.perf_counter() - t0
        lang = "ja" if "ja" in pm.languages and not pm.instruct else "en"
        params = GenerationParams(max_new_tokens=a.new_tokens)
        msgs = [[{"role": "user", "content": p}] for p in PROMPTS[lang]]
        model.generate(msgs[0], GenerationParams(max_new_tokens=4))  # warm-up
        t0 = time.perf_counter()
        c = model.generate(msgs[0], params)
        single_s = time.perf_counter() - t0
        single_tps = c.usage.completion_tokens / single_s
        batch = (msgs * ((a.batch + len(msgs) - 1) // len(msgs)))[: a.batch]
        t0 = time.perf_counter()
        outs = model.batch(batch, params)
        batch_s = time.perf_counter() - t0
        toks = sum(o.usage.completion_tokens for o in outs if not isinstance(o, BaseException))
        print(f"{name}: conversion (first time) {conv} s; load from cache {load_s:.1f} s; "
              f"1 sequence {c.usage.completion_tokens} tokens in {single_s:.2f} s = {single_tps:.1f} tok/s; "
              f"batch of {a.batch}: {toks} tokens in {batch_s:.2f} s = {toks / batch_s:.1f} tok/s")
        print(f"  sample ({lang}): {c.text[:100]!r}")


if __name__ == "__main__":
    main()
