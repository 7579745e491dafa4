"""Benchmark: kyokan's judge vs ragas' rubric-based metric (RubricsScore, what EmplifAI §5.3 built
on) on the same loopback OpenAI-compatible server with 100 ms latency per call: 100 dialogues × 7
metrics = 700 judge calls each. Prints wall times, the kyokan/ragas ratio and lost results.

ragas is NOT a kyokan dependency: it runs in its own venv (bench/requirements-judge-ragas.txt)::

    python3 -m venv /tmp/kyokan-ragas-venv
    /tmp/kyokan-ragas-venv/bin/pip install -r bench/requirements-judge-ragas.txt
    .venv/bin/python bench/judge_vs_ragas.py --ragas-python /tmp/kyokan-ragas-venv/bin/python

The server runs in its own process (so neither client shares its GIL) and answers both clients'
prompts with deterministic 1–5 scores. Scenarios: a clean server, and a flaky one (a share of calls
get 429 with Retry-After, 500, or a garbage body). Without ``--ragas-python`` only kyokan runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
_IDS = re.compile(r"\(id: ([a-z_]+)\)")


# --- the server process ----------------------------------------------------------------------
def respond(req: dict[str, Any]) -> str:
    msgs = req.get("messages") or []
    text = json.dumps(msgs, ensure_ascii=False)
    user = "\n".join(str(m.get("content", "")) for m in msgs if m.get("role") == "user")
    s = 1 + hashlib.sha256(text.encode()).digest()[0] % 5
    ids = _IDS.findall(user)
    if ids:  # kyokan all-in-one
        return json.dumps({"scores": {m: {"rationale": "ok", "score": 1 + (s + i) % 5} for i, m in enumerate(ids)}})
    rf = req.get("response_format") or {}
    if (rf.get("json_schema") or {}).get("name") == "judgement":  # kyokan per metric
        return json.dumps({"rationale": "ok", "score": s})
    return json.dumps({"feedback": "ok", "score": s})  # ragas' ScoreFeedback


def serve(latency: float, fault_rate: float, seed: int) -> None:
    from kyokan.testing.openai_server import Fault, OpenAIServer

    faults = [Fault.status(429, retry_after=0.2), Fault.status(500), Fault.garbage()]
    with OpenAIServer(responder=respond, latency=latency, fault_rate=fault_rate, faults=faults,
                      fault_seed=seed) as srv:
        print(srv.base_url, flush=True)
        for line in sys.stdin:  # "stats" prints counters; EOF stops
            if line.strip() == "stats":
                print(json.dumps({"calls": srv.calls, "outcomes": dict(srv.outcomes),
                                  "max_concurrency": srv.max_concurrency}), flush=True)
                srv.reset_counters()


class Server:
    def __init__(self, latency: float, fault_rate: float, seed: int = 0) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", "--latency", str(latency),
                                      "--fault-rate", str(fault_rate), "--seed", str(seed)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().strip()

    def stats(self) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=10)


# --- the clients ---------------------------------------------------------------------------------
def make_input(path: Path, n: int) -> None:
    from kyokan.data import sample_path

    rows = [json.loads(x) for x in Path(sample_path("ja")).read_text(encoding="utf-8").splitlines()][:n]
    with open(path, "w", encoding="utf-8") as f:
        for i, r in enumerate(rows):
            r["meta"] = {**r.get("meta", {}), "generation": {"model": f"model-{'ab'[i % 2]}", "format_ok": True}}
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def run_kyokan(inp: Path, base_url: str, concurrency: int, all_in_one: bool, workdir: Path,
               cache: Path | None = None) -> dict[str, Any]:
    from kyokan.judge import JudgeConfig, get_rubric, judge_file
    from kyokan.models import load_model

    out = workdir / f"kyokan-{concurrency}-{int(all_in_one)}-{time.monotonic_ns()}.jsonl"
    cache = cache or out.with_suffix(".sqlite")
    model = load_model("openai:judge-bench", base_url=base_url, concurrency=concurrency, timeout=60, max_retries=8)
    t0 = time.perf_counter()
    res = judge_file(inp, out, [model], get_rubric(), JudgeConfig(concurrency=concurrency, all_in_one=all_in_one),
                     cache_path=cache)
    wall = time.perf_counter() - t0
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    n_expected = len(inp.read_text(encoding="utf-8").splitlines()) * 7
    got = sum(1 for r in rows for v in r["scores"].values() if v is not None)
    return {"wall": wall, "expected": n_expected, "lost": n_expected - got, "calls": res.stats.calls,
            "cached": res.stats.cached, "retries": res.stats.retries, "cache": str(cache)}


def run_ragas(python: str, inp: Path, base_url: str, workers: int) -> dict[str, Any]:
    rubric = HERE.parent / "src" / "kyokan" / "judge" / "rubrics" / "emplifai7.json"
    t0 = time.perf_counter()
    p = subprocess.run([python, str(HERE / "judge_ragas_worker.py"), str(inp), str(rubric), base_url,
                        "--workers", str(workers)], capture_output=True, text=True,
                       env={**os.environ, "RAGAS_DO_NOT_TRACK": "true"})
    total = time.perf_counter() - t0
    if p.returncode != 0:
        return {"error": p.stderr.strip().splitlines()[-1] if p.stderr.strip() else f"exit {p.returncode}"}
    res = json.loads(p.stdout.strip().splitlines()[-1])
    res.pop("scores", None)
    res["process_wall"] = total
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--fault-rate", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=100, help="dialogues (× 7 metrics)")
    ap.add_argument("--ragas-python", default=None, help="python of the venv where ragas is installed")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[16, 64],
                    help="kyokan concurrency levels (ragas runs at the same max_workers)")
    ap.add_argument("--flaky", type=float, default=0.05, help="fault rate of the flaky scenario (0 to skip)")
    args = ap.parse_args()
    if args.serve:
        serve(args.latency, args.fault_rate, args.seed)
        return

    work = Path(tempfile.mkdtemp(prefix="kyokan-judge-bench-"))
    inp = work / "dialogues.jsonl"
    make_input(inp, args.n)
    print(f"# kyokan judge vs ragas RubricsScore: {args.n} dialogues × 7 metrics, loopback server with "
          f"{args.latency * 1000:.0f} ms latency per call (server in its own process); work dir {work}; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    scenarios = [("clean", 0.0)] + ([("flaky", args.flaky)] if args.flaky > 0 else [])
    results: list[dict[str, Any]] = []
    for name, rate in scenarios:
        for c in args.concurrency:
            srv = Server(args.latency, rate, seed=1)
            try:
                k = run_kyokan(inp, srv.base_url, c, False, work)
                k["server"] = srv.stats()
                rerun = run_kyokan(inp, srv.base_url, c, False, work, cache=Path(k["cache"]))
                rerun["server"] = srv.stats()
                r = run_ragas(args.ragas_python, inp, srv.base_url, c) if args.ragas_python else None
                if r is not None:
                    r["server"] = srv.stats()
                aio = run_kyokan(inp, srv.base_url, c, True, work) if name == "clean" else None
            finally:
                srv.close()
            results.append({"scenario": name, "fault_rate": rate, "concurrency": c, "kyokan": k,
                            "kyokan_rerun_from_cache": rerun, "ragas": r, "kyokan_all_in_one": aio})
            line = (f"[{name:5s} fault_rate={rate:.2f} concurrency={c:3d}] kyokan per-metric {k['wall']:6.2f} s "
                    f"(lost {k['lost']}/{k['expected']}, {k['calls']} calls, {k['retries']} HTTP retries, "
                    f"server peak in flight {k['server']['max_concurrency']})")
            print(line)
            print(f"{'':38s}kyokan rerun from cache {rerun['wall']:6.2f} s ({rerun['server']['calls']} server calls, "
                  f"lost {rerun['lost']})")
            if aio:
                print(f"{'':38s}kyokan --all-in-one      {aio['wall']:6.2f} s (lost {aio['lost']}/{aio['expected']}, "
                      f"{aio['calls']} calls)")
            if r is not None:
                if "error" in r:
                    print(f"{'':38s}ragas failed: {r['error']}")
                else:
                    print(f"{'':38s}ragas {r['ragas']} max_workers={c:<3d} {r['wall']:6.2f} s "
                          f"(evaluate() only; {r['process_wall']:.2f} s with imports; lost {r['lost']}/{r['expected']}, "
                          f"server peak in flight {r['server']['max_concurrency']})")
                    print(f"{'':38s}ratio kyokan/ragas = {k['wall'] / r['wall']:.3f} (per-metric, same concurrency)")
    # headline: the ragas default (max_workers=16) against kyokan at the same bound
    clean = [x for x in results if x["scenario"] == "clean" and x["ragas"] and "error" not in x["ragas"]]
    for x in clean:
        rg, k, aio, rr = x["ragas"], x["kyokan"], x["kyokan_all_in_one"], x["kyokan_rerun_from_cache"]
        print(f"headline (concurrency {x['concurrency']}): ragas {rg['wall']:.2f} s; kyokan per-metric "
              f"{k['wall']:.2f} s (ratio {k['wall'] / rg['wall']:.3f}); kyokan --all-in-one {aio['wall']:.2f} s "
              f"(ratio {aio['wall'] / rg['wall']:.3f}); kyokan rerun from cache {rr['wall']:.2f} s "
              f"(ratio {rr['wall'] / rg['wall']:.3f}); target ≤ 0.25")
    lost = {f"{x['scenario']}@{x['concurrency']}": {"kyokan": x["kyokan"]["lost"],
                                                    "ragas": (x["ragas"] or {}).get("lost")} for x in results}
    print(f"lost results (of {args.n * 7}): {json.dumps(lost)}")
    print(f"# load average after: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    (work / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"# raw figures: {work / 'results.json'}")


if __name__ == "__main__":
    main()
