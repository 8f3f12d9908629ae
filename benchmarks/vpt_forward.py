"""VPT forward speed: frames/s of the VPT-1x architecture (random init) on CPU, batch 1 and 8.

How to run (from the repository root)::

    .venv/bin/python benchmarks/vpt_forward.py --quick              # ~1 minute
    .venv/bin/python benchmarks/vpt_forward.py --json vpt.json      # more repetitions

What it measures: the full policy (`openended.priors.vpt.VPTPolicy` with OpenAI's 1x
``policy_kwargs``: ImpalaCNN at width 4, hidsize 1024, 4 attention blocks over a 128-frame
memory, the 8641- and 121-way heads and the value head) acting as an agent acts: one
128 x 128 frame per env per call, the recurrent state carried, under ``torch.no_grad``.
The memory starts full (every slot valid), so attention runs over 128 past frames. Weights are
random: speed does not depend on them.

Baseline, in the same run: the ImpalaCNN image encoder alone (``net.img_process``: the
same convolutions and dense layers, no attention, no heads) on the same frames. The
ratio ``fps / encoder fps`` says what share of the cost the recurrence and heads add on
top of the image encoder (1.0: nothing). Policy and encoder alternate in rounds, and the
ratio is the median of per-round ratios, so load drift on a shared machine cancels out.

Why CPU time: the development machines have 2 cores shared with other jobs, where
wall-clock rates swing by 2-3x with the load. ``fps_b*`` are frames per CPU-second of this
process with one torch thread (``--threads``, default 1): what wall-clock frames/s are on
an idle core. ``wall_fps_b*`` are the wall-clock rates of the same run, for reference.

Output: a table and, with ``--json PATH``, ``{"fps_b1", "fps_b8", "wall_fps_b1",
"wall_fps_b8", "encoder_fps_b1", "encoder_fps_b8", "fps_b1_over_encoder",
"fps_b8_over_encoder", "params", "config": {...}}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def timed(fn: Any, calls: int) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of ``calls`` calls of ``fn``."""
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(calls):
        fn()
    return time.perf_counter() - w0, time.process_time() - c0


def measure(batch: int, rounds: int, calls: int) -> dict[str, Any]:
    """Alternating rounds of policy steps and encoder-only passes at one batch size."""
    import torch

    from openended.priors.vpt import VPTConfig, VPTPolicy

    torch.manual_seed(0)
    policy = VPTPolicy(VPTConfig.vpt_1x()).eval()
    frames = torch.randint(0, 256, (batch, 1, 128, 128, 3), dtype=torch.uint8)
    not_first = torch.zeros(batch, 1, dtype=torch.bool)
    # a full memory (every slot valid), as deep in an episode: attention over 128 past frames
    state = [
        [(valid.fill_(True), torch.randn_like(k), torch.randn_like(v)) for valid, k, v in policy.initial_state(batch)]
    ]

    def step() -> None:
        with torch.no_grad():
            _, state[0] = policy(frames, not_first, state[0])

    def encode() -> None:
        with torch.no_grad():
            policy.net.img_process(policy.net.img_preprocess(frames))

    step(), encode()  # warm-up
    rows: dict[str, list[tuple[float, float]]] = {"policy": [], "encoder": []}
    for r in range(rounds):
        order = ("policy", "encoder") if r % 2 == 0 else ("encoder", "policy")
        for name in order:
            rows[name].append(timed(step if name == "policy" else encode, calls))
    frames_per_round = batch * calls

    def fps(name: str, k: int) -> float:
        return frames_per_round * len(rows[name]) / sum(t[k] for t in rows[name])

    ratios = [e[1] / p[1] for p, e in zip(rows["policy"], rows["encoder"])]  # encoder CPU time / policy CPU time
    return {
        "fps": fps("policy", 1),
        "wall_fps": fps("policy", 0),
        "encoder_fps": fps("encoder", 1),
        "over_encoder": statistics.median(ratios),
        "per_round_over_encoder": ratios,
        "params": sum(p.numel() for p in policy.parameters()),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds (about a minute)")
    ap.add_argument("--json", metavar="PATH", help="write the results as JSON")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--rounds", type=int, default=None, help="alternating rounds (quick 3, full 8)")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    rounds = args.rounds or (3 if args.quick else 8)
    out: dict[str, Any] = {}
    print(f"{'batch':>5s} {'policy fps':>11s} {'wall fps':>9s} {'encoder fps':>12s} {'policy/encoder':>15s}")
    for batch, calls in ((1, 8 if args.quick else 20), (8, 2 if args.quick else 5)):
        m = measure(batch, rounds, calls)
        print(f"{batch:5d} {m['fps']:11.2f} {m['wall_fps']:9.2f} {m['encoder_fps']:12.2f} {m['over_encoder']:15.3f}")
        out[f"fps_b{batch}"] = m["fps"]
        out[f"wall_fps_b{batch}"] = m["wall_fps"]
        out[f"encoder_fps_b{batch}"] = m["encoder_fps"]
        out[f"fps_b{batch}_over_encoder"] = m["over_encoder"]
        out[f"per_round_b{batch}"] = m["per_round_over_encoder"]
        out["params"] = m["params"]
    out["config"] = {
        "architecture": "VPT 1x (OpenAI policy_kwargs), random init, 128x128 frames, full 128-frame memory",
        "threads": args.threads,
        "rounds": rounds,
        "quick": args.quick,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_avg": os.getloadavg(),
    }
    print(f"parameters: {out['params']:,}; threads {args.threads}; load average {out['config']['load_avg'][0]:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    main()
