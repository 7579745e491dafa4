"""The ragas side of bench/judge_vs_ragas.py. Runs ONLY in the bench venv that has ragas
(bench/requirements-judge-ragas.txt); kyokan does not depend on ragas and this file does not import
kyokan.

    python bench/judge_ragas_worker.py INPUT.jsonl RUBRIC.json BASE_URL [--workers 16] [--lang en]

Scores every dialogue on every rubric metric with ragas' rubric-based metric (``RubricsScore``, the
one EmplifAI §5.3 built on), through ``ragas.evaluate`` with a LangChain ChatOpenAI judge pointed
at BASE_URL. Prints one JSON line: wall seconds, results expected, results lost (NaN), scores.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
import warnings

os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
warnings.filterwarnings("ignore")


def render(rec: dict, lang: str) -> tuple[str, str]:
    who = {"speaker": "Patient", "listener": "Responder"} if lang == "en" else {"speaker": "患者", "listener": "応答者"}
    dialogue = "\n".join(f"{who[t['role']]}: {t['text']}" for t in rec["turns"])
    user = f"Situation: {rec['situation']}\nPatient's emotion: {rec['emotion']}"
    return user, dialogue


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("rubric")
    ap.add_argument("base_url")
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--lang", default="en")
    ap.add_argument("--model", default="judge-bench")
    args = ap.parse_args()

    from langchain_openai import ChatOpenAI
    from ragas import EvaluationDataset, RunConfig, SingleTurnSample, evaluate
    from ragas.llms import LangchainLLMWrapper
    from ragas.metrics import RubricsScore

    with open(args.input, encoding="utf-8") as f:
        recs = [json.loads(line) for line in f if line.strip()]
    with open(args.rubric, encoding="utf-8") as f:
        rubric = json.load(f)
    lang = args.lang
    samples = []
    for r in recs:
        user, dialogue = render(r, lang)
        samples.append(SingleTurnSample(user_input=user, response=dialogue))
    metrics = []
    for m in rubric["metrics"]:
        rub = {"metric": m["definition"][lang].replace("{language}", "Japanese")}
        for p in range(rubric["scale"]["min"], rubric["scale"]["max"] + 1):
            rub[f"score{p}_description"] = m["anchors"][lang][str(p)].replace("{language}", "Japanese")
        metrics.append(RubricsScore(name=m["id"], rubrics=rub))
    llm = LangchainLLMWrapper(ChatOpenAI(model=args.model, base_url=args.base_url, api_key="sk-bench",
                                         temperature=0, max_retries=2, timeout=60))
    t0 = time.perf_counter()
    result = evaluate(EvaluationDataset(samples=samples), metrics=metrics, llm=llm,
                      run_config=RunConfig(max_workers=args.workers, timeout=60, max_retries=10, max_wait=2),
                      show_progress=False, raise_exceptions=False)
    wall = time.perf_counter() - t0
    df = result.to_pandas()
    ids = [m["id"] for m in rubric["metrics"]]
    scores = {mid: [None if (v is None or (isinstance(v, float) and math.isnan(v))) else float(v) for v in df[mid]]
              for mid in ids}
    lost = sum(1 for mid in ids for v in scores[mid] if v is None)
    import ragas

    print(json.dumps({"wall": wall, "expected": len(recs) * len(ids), "lost": lost, "ragas": ragas.__version__,
                      "workers": args.workers, "scores": scores}))


if __name__ == "__main__":
    main()
