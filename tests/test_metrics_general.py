"""`kyokan eval general` through lm-evaluation-harness with the tiny model and a tiny local task."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import metrics_util  # noqa: F401 - offline env

TASK_DIR = Path(__file__).parent / "data" / "metrics_lmeval"


@pytest.mark.slow
def test_general_tiny_model_local_task(tmp_path) -> None:
    from kyokan.metrics.general import evaluate_general
    from kyokan.testing import tiny_causal_lm

    tasks = tmp_path / "tasks"
    tasks.mkdir()
    shutil.copy(TASK_DIR / "tiny_mc.jsonl", tasks / "tiny_mc.jsonl")
    yaml = (TASK_DIR / "kyokan_tiny_mc.yaml").read_text(encoding="utf-8").replace("__DATA_DIR__", str(tasks))
    (tasks / "kyokan_tiny_mc.yaml").write_text(yaml, encoding="utf-8")
    model = tiny_causal_lm()
    s = evaluate_general(f"hf:{model}", ["kyokan_tiny_mc"], tmp_path / "out", include_path=[str(tasks)],
                         apply_chat_template=True)
    res = s["results"]["kyokan_tiny_mc"]
    assert 0.0 <= res["acc,none"] <= 1.0
    assert s["n_samples"]["kyokan_tiny_mc"]["effective"] == 4
    assert s["settings"]["apply_chat_template"] is True
    saved = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert saved["results"]["kyokan_tiny_mc"]["acc,none"] == res["acc,none"]


@pytest.mark.slow
def test_general_unknown_task_is_a_user_error(tmp_path) -> None:
    from kyokan.errors import KyokanError
    from kyokan.metrics.general import evaluate_general
    from kyokan.testing import tiny_causal_lm

    with pytest.raises(KyokanError, match="unknown lm-eval task"):
        evaluate_general(f"hf:{tiny_causal_lm()}", ["no_such_task_xyz"], tmp_path / "out")
