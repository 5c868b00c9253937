"""Does reduced precision change a model's samples? The check `--fast auto` runs, on any checkpoint.

    python bench/precision.py --ckpt pretrained/fmnist_sngan.pt --ckpt pretrained/gmm25_wgangp.pt
    python bench/precision.py --device cuda --precision bf16 --precision fp16 --ckpt ...

For each checkpoint and precision: the same chains (same latents, same noise) in float32 and in
reduced-precision networks, scored against the model's data (domain FID for Fashion-MNIST
images, EMD for the 2-D sets) with 95% bootstrap intervals; it passes when they overlap
(ddls.sampling.precision). Prints one JSON object per line.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ddls.sampling.driver import RunConfig  # noqa: E402
from ddls.sampling.precision import CHECK_N, CHECK_STEPS, precision_gate  # noqa: E402
from ddls.sampling.run import load_energy  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ckpt", action="append", required=True)
    ap.add_argument("--precision", action="append", default=None, help="bf16 (default), fp16 (CUDA only).")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--n", type=int, default=CHECK_N)
    ap.add_argument("--steps", type=int, default=CHECK_STEPS)
    ap.add_argument("--eps", type=float, default=0.01)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for ckpt in args.ckpt:
        model, energy = load_energy(ckpt, args.device)
        config = RunConfig(n=args.n, steps=args.steps, eps=args.eps, chunk_size=args.n)
        gate = precision_gate(model, energy, config)
        for precision in args.precision or ["bf16"]:
            t0 = time.perf_counter()
            passed, verdict = gate(precision)
            print(json.dumps({"ckpt": ckpt, "device": args.device, "eps": args.eps, **verdict,
                              "seconds": round(time.perf_counter() - t0, 1)}), flush=True)


if __name__ == "__main__":
    main()
