#!/usr/bin/env bash
# Reproduce the 2-D experiment of the DDLS slides (../shared/seeds/003_*): EMD of the generator
# alone and of DDLS at eps 1e-2..1e-5, 1000 Langevin steps, on the 25-Gaussian grid and the Swiss roll.
# Pass --retrain to make the checkpoints again first (about 5 minutes on 2 CPU cores).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--retrain" ]; then
  for data in gmm25 swissroll; do
    ddls train --data "$data" --loss wgan-gp --lr 1e-3 --gp-weight 0.1 --hidden 128 --steps 3000 --seed 0 \
      --out "pretrained/${data}_wgangp_raw.pt"
    ddls calibrate --ckpt "pretrained/${data}_wgangp_raw.pt" --steps 2000 --lr 1e-3 --out "pretrained/${data}_wgangp.pt"
  done
fi
for data in gmm25 swissroll; do
  ddls sweep --ckpt "pretrained/${data}_wgangp.pt" --eps 1e-2 --eps 1e-3 --eps 1e-4 --eps 1e-5 --steps 1000 \
    --n 5000 --seed 0 --out "sweep-${data}"
done
