"""DDLS on a CIFAR-10 SNGAN: the protocol of Che et al. 2020 (arXiv 2003.06060), section 5.

Target (the paper's Table): SNGAN alone IS 8.22 / FID 21.7  ->  DDLS IS 9.09 / FID 15.42.

Steps: load a CIFAR-10 SNGAN checkpoint of any format ddls reads; calibrate its
discriminator as a logistic classifier against the frozen generator on real CIFAR-10
batches; draw 50,000 samples with the generator alone and with Langevin DDLS; score
both with Inception Score and FID. Needs a GPU (hours on one), the CIFAR-10 training
set (torchvision downloads it) and, for the scores, the CIFAR-10 FID statistics file of
pytorch-gan-metrics (`--fid-stats`, e.g. cifar10.train.npz) and the original Inception
weights with their classifier (`ddls inception install --download` or `--from FILE`).

    python examples/cifar10_sngan.py --ckpt sngan_cifar.pt --steps 500 --eps 0.01
    python examples/cifar10_sngan.py --ckpt netG_100000_steps.pth --disc netD_100000_steps.pth
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

PAPER = {"sngan": {"IS": 8.22, "FID": 21.7}, "ddls": {"IS": 9.09, "FID": 15.42}}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--ckpt", required=True, help="SNGAN checkpoint (any format `ddls inspect` knows)")
    p.add_argument("--disc", default=None, help="discriminator file for torch-mimicry / StudioGAN")
    p.add_argument("--data-root", default="./data", help="where torchvision keeps CIFAR-10")
    p.add_argument("--calibrate-steps", type=int, default=2000, help="0 skips calibration")
    p.add_argument("--calibrate-lr", type=float, default=1e-4)
    p.add_argument("--steps", type=int, default=500, help="Langevin steps")
    p.add_argument("--eps", type=float, default=0.01, help="Langevin step size")
    p.add_argument("--n", type=int, default=50000, help="samples per method (the paper: 50k)")
    p.add_argument("--chunk-size", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fid-stats", default=None, help="pytorch-gan-metrics CIFAR-10 statistics (.npz)")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default="cifar10_ddls", help="folder for samples and scores.json")
    return p.parse_args(argv)


def cifar10_sampler(root: str, device: torch.device):
    """draw_real(n, generator) over the CIFAR-10 training images, scaled to [-1, 1] as the GANs were trained."""
    from torchvision.datasets import CIFAR10

    images = torch.from_numpy(CIFAR10(root, train=True, download=True).data).permute(0, 3, 1, 2)
    images = (images.float() / 127.5 - 1).to(device)

    def draw_real(n: int, generator: torch.Generator) -> torch.Tensor:
        idx = torch.randint(len(images), (n,), generator=generator, device=generator.device)
        return images[idx.to(images.device)]

    return draw_real


def scores(images: torch.Tensor, fid_stats: str | None, device: torch.device) -> dict | None:
    """IS and FID of images in [-1, 1] through ddls' Inception features (pytorch-gan-metrics), or None."""
    if fid_stats is None:
        print("IS/FID skipped: pass --fid-stats, the CIFAR-10 statistics file of pytorch-gan-metrics "
              "(or one from `ddls stats`)", file=sys.stderr)
        return None
    from ddls.metrics.features import inception_features, inception_probs, inception_score
    from ddls.metrics.fid_stats import check_same_space, fid_to, read_stats

    reference, meta = read_stats(fid_stats)
    extractor = inception_features(device)
    check_same_space(meta, extractor, fid_stats)
    result = {"FID": fid_to(images, reference, extractor, progress=True)}
    result["IS"], result["IS_std"] = inception_score(inception_probs(images, device))
    return result


def main(argv=None) -> None:
    args = parse_args(argv)
    import ddls
    from ddls._torch import resolve_device
    from ddls.calibration import calibrate

    device = resolve_device(args.device)
    model = ddls.load_any(args.ckpt, args.disc, device=device)
    print(json.dumps(ddls.formats.describe(model)), file=sys.stderr)
    if args.calibrate_steps:
        result = calibrate(model.energy(), "finetune", cifar10_sampler(args.data_root, device),
                           steps=args.calibrate_steps, lr=args.calibrate_lr, seed=args.seed, progress=True)
        energy = result.energy  # the fine-tuned D (and, for a hinge critic, its affine start map)
        print(f"calibrated D: {result.record['note']}", file=sys.stderr)
    else:
        energy = model.energy()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {"paper": PAPER, "args": vars(args)}
    for name, steps in (("sngan", 0), ("ddls", args.steps)):
        config = ddls.RunConfig(n=args.n, steps=steps, eps=args.eps, seed=args.seed, chunk_size=args.chunk_size)
        images = ddls.sample(energy, config, progress=True).samples
        torch.save(images[:100].clone(), out / f"{name}_first100.pt")
        results[name] = scores(images, args.fid_stats, device)
        print(f"{name}: {results[name]} (paper: {PAPER[name]})", file=sys.stderr)
    (out / "scores.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
