"""General-capability retention (EmPO Table 3) through lm-evaluation-harness ``simple_evaluate``.

A local Hugging Face model (``hf:PATH``, a plain path, or a packaged model name converted with
``kyokan.models.packaged.ensure_local``) with an optional PEFT adapter is run on lm-eval tasks.
The chat-template settings (``apply_chat_template``, ``fewshot_as_multiturn``,
``system_instruction``), few-shot count, limit and seeds are recorded with the results.

Task names: English ``mmlu`` (EmPO used 5-shot), the Open LLM Leaderboard v2 group
``leaderboard`` (BBH, MATH lvl 5, GPQA, MuSR, MMLU-Pro, IFEval; needs hub datasets); Japanese
``ja_leaderboard_jcommonsenseqa``, ``ja_leaderboard_jnli``, ``ja_leaderboard_marc_ja``,
``ja_leaderboard_jsquad``, ``ja_leaderboard_jaqket_v2``, ``ja_leaderboard_xwinograd``,
``ja_leaderboard_mgsm``, ``ja_leaderboard_xlsum`` (group ``ja_leaderboard``), and ``global_mmlu_ja``.
Local task YAMLs are added with ``include_path``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kyokan.errors import KyokanError
from kyokan.io import write_json

JAPANESE_TASKS = ("ja_leaderboard_jcommonsenseqa", "ja_leaderboard_jnli", "ja_leaderboard_marc_ja",
                  "ja_leaderboard_jsquad", "ja_leaderboard_jaqket_v2", "ja_leaderboard_xwinograd",
                  "ja_leaderboard_mgsm", "ja_leaderboard_xlsum", "global_mmlu_ja")


def resolve_model_path(spec: str) -> str:
    from kyokan.paths import looks_like_path

    if spec.startswith("hf:"):
        target = spec[3:]
        if looks_like_path(target) and not Path(target).expanduser().exists():
            raise KyokanError(f"model {spec!r}: no such folder")
        return target
    if Path(spec).exists():
        return spec
    try:
        from kyokan.models.packaged import PACKAGED, ensure_local
    except ImportError as e:  # pragma: no cover
        raise KyokanError(f"model {spec!r}: not a path and kyokan.models is unavailable") from e
    if spec in PACKAGED:
        return str(ensure_local(spec))
    raise KyokanError(f"model {spec!r}: expected hf:PATH, a local folder or a packaged model name "
                      f"({', '.join(PACKAGED)}); lm-eval needs local weights")


def load_tasks(tm: Any, tasks: Sequence[str]) -> list[Any]:
    """Build each lm-eval task (which loads its dataset), naming the task whose data is missing:
    offline, a hub dataset that was never cached raises ``ConnectionError`` deep inside ``datasets``."""
    import re

    built: list[Any] = []
    for name in tasks:
        try:
            d = tm.load([name])
        except (ConnectionError, FileNotFoundError) as e:
            m = re.search(r"reach '([^']+)'", str(e))
            where = f" (dataset {m.group(1)})" if m else ""
            raise KyokanError(
                f"--tasks {name}: its data{where} could not be loaded: {str(e).splitlines()[0]}. Run once with "
                "network access (HF_DATASETS_OFFLINE/HF_HUB_OFFLINE unset) to cache it, or give --include-path "
                "with a task YAML whose dataset_path is a local folder") from None
        except Exception as e:
            if type(e).__name__ in ("DatasetNotFoundError", "DataFilesNotFoundError", "OfflineModeIsEnabled"):
                raise KyokanError(f"--tasks {name}: its data could not be loaded: {e}") from None
            raise
        obj = d["groups"].get(name) or d["tasks"].get(name)
        # a tag expands to several tasks: hand lm-eval the name again (it loads them from the cache)
        built.append(obj if obj is not None else name)
    return built


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def evaluate_general(model: str, tasks: Sequence[str], out_dir: str | Path, *, adapter: str | None = None,
                     num_fewshot: int | None = None, limit: float | None = None, batch_size: int = 1,
                     apply_chat_template: bool = False, fewshot_as_multiturn: bool | None = None,
                     system_instruction: str | None = None, include_path: Sequence[str] = (), seed: int = 0,
                     device: str = "cpu", dtype: str = "float32") -> dict[str, Any]:
    import lm_eval
    from lm_eval.tasks import TaskManager

    path = resolve_model_path(model)
    model_args: dict[str, Any] = {"pretrained": path, "dtype": dtype}
    if adapter:
        if not Path(adapter).exists():
            raise KyokanError(f"{adapter}: adapter folder not found")
        model_args["peft"] = adapter
    tm = TaskManager(include_path=[str(p) for p in include_path] or None)
    unknown = [t for t in tasks if t not in tm.all_tasks]
    if unknown:
        raise KyokanError(f"unknown lm-eval task(s) {unknown}; see `lm-eval ls tasks` or give --include-path")
    if fewshot_as_multiturn is None:
        fewshot_as_multiturn = bool(apply_chat_template and num_fewshot)
    t0 = time.time()
    from kyokan.quiet import quiet_lm_eval_git

    quiet_lm_eval_git()
    loaded = load_tasks(tm, tasks)  # before the model: missing data fails in seconds, not after loading weights
    res = lm_eval.simple_evaluate(model="hf", model_args=model_args, tasks=loaded, num_fewshot=num_fewshot,
                                  batch_size=batch_size, device=device, limit=limit, log_samples=False,
                                  apply_chat_template=apply_chat_template, fewshot_as_multiturn=fewshot_as_multiturn,
                                  system_instruction=system_instruction, task_manager=tm, random_seed=seed,
                                  numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed,
                                  bootstrap_iters=1000)
    if res is None:
        raise KyokanError("lm-eval returned no results")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"kind": "kyokan.eval.general", "version": 1, "model": model, "model_path": path, "adapter": adapter,
               "tasks": list(tasks), "results": _jsonable(res.get("results", {})),
               "groups": _jsonable(res.get("groups", {})), "n_samples": _jsonable(res.get("n-samples", {})),
               "settings": {"num_fewshot": num_fewshot, "limit": limit, "batch_size": batch_size,
                            "apply_chat_template": apply_chat_template, "fewshot_as_multiturn": fewshot_as_multiturn,
                            "system_instruction": system_instruction, "seed": seed, "device": device, "dtype": dtype,
                            "include_path": list(include_path)},
               "lm_eval_version": getattr(lm_eval, "__version__", "?"),
               "configs": _jsonable(res.get("configs", {})), "seconds": round(time.time() - t0, 2)}
    write_json(out / "summary.json", summary)
    return summary
