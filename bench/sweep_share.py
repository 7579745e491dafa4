"""Wall time of a sweep with and without stage sharing (`kyokan sweep` vs `kyokan sweep --no-share`).

    python bench/sweep_share.py                                   # examples/sweep_cpu.toml
    python bench/sweep_share.py --config my_sweep.toml --set sample.n=6

Each variant runs in a fresh temporary folder with the same config; the figures are the wall time
of the whole command (every run, its process start-up, the aggregate), the stage computations
done (store folders vs every run's own stage folders) and the seconds the stages themselves
reported (stage.json), so the saving can be told apart from machine noise. On a shared machine
take the median of several repetitions (--repeat) and say "(loaded)".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def stage_seconds(out: Path, shared: bool) -> tuple[int, float]:
    """(stage computations, their summed seconds) from the stage.json files actually written."""
    folders = [d for d in (out / "stages").glob("*/*") if d.is_dir()] if shared else \
        [d for d in (out / "runs").glob("*/*") if d.is_dir() and not d.is_symlink()]
    n, secs = 0, 0.0
    for d in folders:
        try:
            st = json.loads((d / "stage.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if st.get("status") == "complete":
            n += 1
            secs += float(st.get("seconds") or 0.0)
    return n, secs


def run(config: Path, sets: list[str], shared: bool) -> tuple[float, int, float, int]:
    with tempfile.TemporaryDirectory(prefix="kyokan-sweep-bench-") as tmp:
        out = Path(tmp) / "out"
        cmd = [sys.executable, "-m", "kyokan", "sweep", str(config), "-o", str(out)]
        if not shared:
            cmd.append("--no-share")
        for s in sets:
            cmd += ["--set", s]
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
               "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            sys.exit(f"kyokan sweep failed ({r.returncode}):\n{r.stderr[-3000:]}")
        n, secs = stage_seconds(out, shared)
        runs = len(json.loads((out / "sweep.json").read_text(encoding="utf-8"))["points"])
        return wall, n, secs, runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "examples" / "sweep_cpu.toml")
    ap.add_argument("--set", action="append", default=[], help="KEY=VALUE passed to every run")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--variant", choices=("both", "shared", "not-shared"), default="both",
                    help="run one variant only (e.g. the two side by side, under the same load)")
    a = ap.parse_args()
    res: dict[str, list[tuple[float, int, float, int]]] = {}
    for _ in range(a.repeat):
        if a.variant in ("both", "shared"):
            res.setdefault("shared", []).append(run(a.config, a.set, True))
        if a.variant in ("both", "not-shared"):
            res.setdefault("not shared", []).append(run(a.config, a.set, False))
    first = next(iter(res.values()))[0]
    print(f"sweep: {a.config} {' '.join(a.set)} — {first[3]} runs, {a.repeat} repetition(s), "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '1')}, load average {os.getloadavg()[0]:.1f}")
    print(f"{'variant':<12} {'wall s (median)':>16} {'stage runs':>11} {'stage s (median)':>17}")
    walls = {}
    for k, rows in res.items():
        walls[k] = statistics.median(r[0] for r in rows)
        print(f"{k:<12} {walls[k]:>16.1f} {rows[0][1]:>11d} {statistics.median(r[2] for r in rows):>17.1f}")
    if len(walls) == 2:
        print(f"saving: {walls['not shared'] - walls['shared']:.1f} s wall "
              f"({100 * (1 - walls['shared'] / walls['not shared']):.0f} %)")


if __name__ == "__main__":
    main()
