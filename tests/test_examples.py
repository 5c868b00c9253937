"""The CIFAR-10 example cannot run here (GPU, data, Inception weights); it must import and explain itself."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_cifar10_example_help():
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "cifar10_sngan.py"), "--help"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "--ckpt" in r.stdout and "--disc" in r.stdout and "15.42" in r.stdout


def test_cifar10_example_parses_the_headline_command():
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import cifar10_sngan
    finally:
        sys.path.pop(0)
    args = cifar10_sngan.parse_args(["--ckpt", "sngan_cifar.pt", "--steps", "500", "--eps", "0.01"])
    assert args.n == 50000 and args.steps == 500 and args.eps == 0.01
    assert cifar10_sngan.PAPER["ddls"] == {"IS": 9.09, "FID": 15.42}
