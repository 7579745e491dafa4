"""End-to-end generation throughput against a loopback OpenAI-compatible server (50 ms latency):
the bundled Japanese sample (168 dialogues) at concurrency 1 and 16, then at concurrency 16
with 20 % injected faults (429 with Retry-After, 500, garbage bodies, dropped connections) —
checking that no row is lost or duplicated — and the parser's speed on messy outputs.

    .venv/bin/python bench/generate_throughput.py
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from kyokan.data import read_records, sample_path
from kyokan.generate import GenerateConfig, generate_file, parse_dialogue
from kyokan.models import load_model
from kyokan.testing.openai_server import Fault, OpenAIServer


def responder(req: dict[str, Any]) -> str:
    user = req["messages"][-1]["content"]
    m = re.search(r"状況：(.*)", user)
    return f"患者：{(m.group(1) if m else '')[:20]}\n支援者：それはつらいですね。\n患者：はい。\n支援者：話してくれてありがとう。"


def run(records: list[dict[str, Any]], out: Path, concurrency: int, faults: float) -> tuple[float, dict[str, Any]]:
    kinds = [Fault.status(429, retry_after=0.05), Fault.status(500), Fault.garbage(), Fault.disconnect()]
    with OpenAIServer(responder=responder, latency=0.05, fault_rate=faults, faults=kinds, fault_seed=7) as srv:
        model = load_model("openai:bench", base_url=srv.base_url, concurrency=concurrency, max_retries=10,
                           backoff_base=0.05, backoff_max=0.5)
        t0 = time.perf_counter()
        s = generate_file(records, model, out, GenerateConfig(), in_flight=concurrency)
        dt = time.perf_counter() - t0
        injected = sum(v for k, v in srv.outcomes.items() if k != "ok")
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    ids = [r["id"] for r in rows]
    return dt, {"rows": len(rows), "unique": len(set(ids)), "in_order": ids == [r["id"] for r in records],
                "failed": len(s.failed), "injected_faults": injected, "format_ok": s.format_ok}


def main() -> None:
    records = list(read_records(sample_path("ja")))
    with tempfile.TemporaryDirectory() as tmp:
        for conc, faults in ((1, 0.0), (16, 0.0), (16, 0.2)):
            dt, r = run(records, Path(tmp) / f"gen-{conc}-{faults}.jsonl", conc, faults)
            print(f"concurrency {conc:>2}, faults {faults:.0%}: {len(records)} dialogues in {dt:5.2f} s = "
                  f"{len(records) / dt:6.1f} rows/s; {r}")
    messy = ["```\n患者：a\n支援者：b\n患者：c\n支援者：d\n```", "以下です。\n**Patient**: a\n**Supporter**: b\n"
             "Patient: c\nSupporter: d\n\n以上", "a\nb\nc\nd", "患者：a\n支援者：b"] * 2500
    t0 = time.perf_counter()
    ok = sum(parse_dialogue(m).format_ok for m in messy)
    dt = time.perf_counter() - t0
    print(f"parser: {len(messy)} messy outputs in {dt:.2f} s = {len(messy) / dt:,.0f} parses/s ({ok} format ok)")


if __name__ == "__main__":
    main()
