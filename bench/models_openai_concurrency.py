"""Concurrency of the openai: backend against a real loopback server with 50 ms latency.

Prints the sequential rate, the rate at concurrency 16, and their ratio (target ≥ 12×).

    .venv/bin/python bench/models_openai_concurrency.py [--latency 0.05] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from kyokan.models import GenerationParams, load_model
from kyokan.testing.openai_server import OpenAIServer


async def rate(base_url: str, n: int, concurrency: int) -> tuple[float, int]:
    model = load_model("openai:bench", base_url=base_url, concurrency=concurrency)
    params = GenerationParams(max_new_tokens=16)
    msgs = [[{"role": "user", "content": f"question {i}"}] for i in range(n)]
    try:
        await model.abatch(msgs[:concurrency], params)  # warm the connection pool
        t0 = time.perf_counter()
        out = await model.abatch(msgs, params)
        dt = time.perf_counter() - t0
    finally:
        await model.aclose()
    failed = sum(isinstance(o, BaseException) for o in out)
    return n / dt, failed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--n-seq", type=int, default=40)
    ap.add_argument("--n-conc", type=int, default=320)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    with OpenAIServer(latency=a.latency) as srv:
        seq = [asyncio.run(rate(srv.base_url, a.n_seq, 1)) for _ in range(a.repeats)]
        conc = [asyncio.run(rate(srv.base_url, a.n_conc, a.concurrency)) for _ in range(a.repeats)]
        high = srv.max_concurrency
    s = max(r for r, _ in seq)
    c = max(r for r, _ in conc)
    print(f"loopback OpenAI-compatible server, latency {a.latency * 1000:.0f} ms per request")
    print(f"sequential (concurrency 1): {s:7.1f} req/s  (best of {a.repeats}; {a.n_seq} requests each; "
          f"ideal {1 / a.latency:.1f})")
    print(f"concurrency {a.concurrency:<2}:            {c:7.1f} req/s  (best of {a.repeats}; {a.n_conc} requests each; "
          f"ideal {a.concurrency / a.latency:.1f}; server saw {high} in flight)")
    print(f"ratio: {c / s:.1f}x  (target >= 12x)")
    print(f"failures: {sum(f for _, f in seq + conc)}")


if __name__ == "__main__":
    main()
