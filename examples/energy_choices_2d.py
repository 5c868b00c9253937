"""Raw WGAN critic vs. temperature vs. calibrated logit as the DDLS energy, on a 2-D checkpoint.

    python examples/energy_choices_2d.py pretrained/gmm25_wgangp_raw.pt 300

Prints EMD / modes / high-quality % for the generator alone and for each energy and eps
(2000 chains, the given number of ULA steps). docs/results.md quotes its output.
"""
import sys

import torch

from ddls.calibration import calibrate
from ddls.io.checkpoint import load_model
from ddls.data.toy2d import get_dataset
from ddls.sampling.driver import RunConfig, sample
from ddls.metrics.points2d import evaluate

torch.set_num_threads(1)  # the quoted numbers were made single-threaded


def report(tag, energy, dataset, steps, eps_values):
    base = evaluate(sample(energy, RunConfig(n=2000, steps=0)).samples.numpy(), dataset)
    print(tag, "generator", {k: round(v, 3) for k, v in base.items()}, flush=True)
    for eps in eps_values:
        out = sample(energy, RunConfig(n=2000, steps=steps, eps=eps))
        print("  ", tag, eps, {k: round(v, 3) for k, v in evaluate(out.samples.numpy(), dataset).items()}, flush=True)


def main(path: str, steps: int) -> None:
    model = load_model(path)
    dataset = get_dataset(model.data)
    report("critic T=1", model.energy(), dataset, steps, [1e-2, 1e-3])
    report("critic T=0.2", model.energy(temperature=0.2), dataset, steps, [1e-2, 1e-3, 1e-4])
    result = calibrate(model.energy(), "finetune", dataset.sample, steps=2000, lr=1e-3)
    print("calibration:", result.record["note"])
    report("calibrated", result.energy, dataset, steps, [1e-2, 1e-3, 1e-4])


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 300)
