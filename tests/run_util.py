"""A run directory made by the real stages: `kyokan run` on the bundled Japanese sample, with the
systems, the emotion predictor and the judge answered by a real loopback OpenAI-compatible server
(kyokan.testing.OpenAIServer), then the real `kyokan human import` of simulated rater answers.
Report and statistics tests read what the stages wrote — never invented file shapes."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from conftest import run_cli
from judge_util import judge_responder
from report_util import simulate_ratings, write_csv

#: replies of the two systems: sys-a's first three have no ML-Ask emotion word (their IVA scores
#: are undefined), so a reader that keys on the first row would miss the field
PLAIN = ("そうなんですね。", "なるほど、そういうことですか。", "そういうことがあったのですね。")
EMOTIONAL = ("それは本当に嬉しいですね！", "悲しい気持ちになりますよね。", "怖いと感じるのは当然です。",
             "腹が立つのも無理はありません。", "安心しました、よかったです。")


class RunResponder:
    """Answers generation, emotion-prediction and judge requests the way each stage asks."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.judge = judge_responder("json")

    def __call__(self, req: dict[str, Any]) -> str:
        schema = ((req.get("response_format") or {}).get("json_schema") or {})
        if schema.get("name") == "judgement":
            return self.judge(req)
        first = next(m["content"] for m in req["messages"] if m["role"] == "user")
        h = int.from_bytes(hashlib.sha256(first.encode()).digest()[:4], "big")
        if schema.get("name") == "emotion":
            labels = schema["schema"]["properties"]["emotion"]["enum"]
            return json.dumps({"emotion": labels[h % len(labels)]}, ensure_ascii=False)
        model = str(req.get("model"))
        with self.lock:
            n = self.calls[model]
            self.calls[model] += 1
        if model == "sys-a" and n < 3:
            return PLAIN[n]
        pool = EMOTIONAL if model == "sys-a" else EMOTIONAL + PLAIN
        return pool[h % len(pool)]


CONFIG = """
[run]
name = "real"
out = "{out}"
seed = 7
lang = "ja"

[data]
path = "bundled:ja"

[split]
ratios = [0.5, 0.0, 0.5]

[sample]
n = 12
stratify = true
source = "test"

[generate]
systems = ["openai:sys-a", "openai:sys-b"]
task = "response"
base_url = "{url}"
concurrency = 1
max_new_tokens = 64

[eval_emotions]
model = "openai:predictor"
base_url = "{url}"
stand_in = true

[eval_responses]
metrics = ["nidf", "iva", "tries", "length"]

[judge]
model = "openai:judge"
base_url = "{url}"
all_in_one = true
stand_in = true

[human]
style = "emplifai"
options = {{ group_size = 6, raters = 3 }}

[report]
reference = "openai:sys-b"
"""


def build_real_run(root: Path, *, ratings: bool = True) -> Path:
    """Run the pipeline into ``root/real`` and (``ratings``) import simulated human ratings of its
    packets into ``root/real/human/ratings``. Returns the run directory."""
    from kyokan.testing.openai_server import OpenAIServer

    root.mkdir(parents=True, exist_ok=True)
    with OpenAIServer(responder=RunResponder()) as srv:
        cfg = root / "real.toml"
        cfg.write_text(CONFIG.format(out=root.as_posix(), url=srv.base_url), encoding="utf-8")
        r = run_cli("run", cfg)
        assert r.code == 0, r.stderr
    run = root / "real"
    if ratings:
        key_path = run / "human" / "survey.key.json"
        key = json.loads(key_path.read_text(encoding="utf-8"))
        truth = {s: 3.0 + i for i, s in enumerate(sorted({v["source"] for v in key["items"].values() if "source" in v}))}
        csv_path = write_csv(root / "ratings.csv", simulate_ratings(key, 3, truth, 0.6))
        r = run_cli("human", "import", csv_path, "--key", key_path, "-o", run / "human" / "ratings")
        assert r.code == 0, r.stderr
    return run
