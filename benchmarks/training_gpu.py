"""GPU check of the training loop: CUDA with bf16 autocast, ours against a plain torch loop; one JSON line.

Runs as is on a machine with a CUDA GPU (exits 2 without one; `--allow-cpu` for a smoke run elsewhere):

    python benchmarks/training_gpu.py
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch
from training_throughput import compare, synthetic_interactions

from spotify_jobs.training.config import TrainingConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listeners", type=int, default=20_000)
    parser.add_argument("--tracks", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8192)
    parser.add_argument("--negatives", type=int, default=256)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--allow-cpu", action="store_true", help="Run on the CPU when no GPU is visible.")
    args = parser.parse_args()
    if not torch.cuda.is_available() and not args.allow_cpu:
        print(
            "training_gpu: torch sees no CUDA GPU (pass --allow-cpu for a smoke run on the CPU)",
            file=sys.stderr,
        )
        sys.exit(2)
    device = "cuda" if torch.cuda.is_available() else "cpu"

    started = time.perf_counter()
    data = synthetic_interactions(args.listeners, args.tracks, args.days)
    prepare_s = time.perf_counter() - started
    config = TrainingConfig(
        epochs=args.epochs, batch_size=args.batch_size, negatives=args.negatives, dim=args.dim
    )
    result = compare(data, config, device)
    print(
        json.dumps(
            {
                "benchmark": "training_gpu",
                "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
                "torch": torch.__version__,
                "autocast": "bf16" if device == "cuda" else "off",
                "prepare_s": round(prepare_s, 1),
                **result,
            }
        )
    )


if __name__ == "__main__":
    main()
