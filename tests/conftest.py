import atexit
import math
import os
import shutil
import tempfile

import pytest
import torch
from torch import nn

# The device the suite runs on: DDLS_TEST_DEVICE=cuda runs the same tests on a GPU.
DEVICE = torch.device(os.environ.get("DDLS_TEST_DEVICE", "cpu"))
# The user cache (ddls.io.cache) of this run, never the user's own: set before any child process copies the environment.
os.environ["DDLS_CACHE_DIR"] = tempfile.mkdtemp(prefix="ddls-test-cache-")
atexit.register(shutil.rmtree, os.environ["DDLS_CACHE_DIR"], True)


@pytest.fixture
def device():
    return DEVICE


class Linear(nn.Module):
    """x -> x @ W.T + b with given weights: a model whose outputs are easy to compute by hand."""

    def __init__(self, weight, bias):
        super().__init__()
        weight = torch.as_tensor(weight, dtype=torch.float32)
        self.lin = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.lin.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
            self.lin.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))

    def forward(self, x):
        return self.lin(x)


class MixtureLogit(nn.Module):
    """d(x) = log p(x) - log N(x; 0, I) for the Gaussian mixture p (means, weights, one std): then p0 * exp(d)
    is p itself. Counts the rows of its forward passes and those a backward pass reaches."""

    def __init__(self, means, weights, std):
        super().__init__()
        self.register_buffer("means", torch.tensor(means))
        self.register_buffer("log_w", torch.tensor(weights).log())
        self.std = std
        self.forward_rows = self.backward_rows = 0

    def _count_backward(self, grad):
        self.backward_rows += len(grad)

    def forward(self, x):
        from ddls.sampling.energy import standard_normal_logpdf

        self.forward_rows += len(x)
        if x.requires_grad:
            x.register_hook(self._count_backward)
        sq = (x[:, None, :] - self.means).pow(2).sum(2) / self.std**2
        log_p = torch.logsumexp(self.log_w - 0.5 * sq - x.shape[1] / 2 * math.log(2 * math.pi * self.std**2), 1)
        return log_p - standard_normal_logpdf(x)


class Quadratic(nn.Module):
    """d(x) = -0.5 * ||x - c||^2 / s2: a logit peaked at c."""

    def __init__(self, center, s2=1.0):
        super().__init__()
        self.register_buffer("center", torch.as_tensor(center, dtype=torch.float32))
        self.s2 = s2

    def forward(self, x):
        return -0.5 * (x - self.center).pow(2).sum(1) / self.s2

# Environment for tests that run `python -m ddls` in a child process: this checkout first on the path.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1",
                  "PYTHONPATH": os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)}


@pytest.fixture
def one_thread():
    """Small convolutions run faster on one thread, and far faster on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def no_train_metrics():
    """`ddls train` on 2-D data ends by scoring 5000 generator samples (an exact EMD: 10-30 s on a busy CPU).
    Modules that train only to get a checkpoint skip that score; tests/test_cli.py keeps it in a slow test."""
    import ddls.training.run as train_run

    with pytest.MonkeyPatch.context() as m:
        m.setattr(train_run, "_metrics_2d", lambda trained, dataset: {})
        yield


@pytest.fixture(scope="module")
def wgan_ckpt(tmp_path_factory, no_train_metrics):
    """A tiny ring8 WGAN-GP checkpoint (5 steps): a critic that is no logit, for calibration tests."""
    path = tmp_path_factory.mktemp("wgan") / "raw.pt"
    r = invoke("train", "--data", "ring8", "--loss", "wgan-gp", "--steps", 5, "--hidden", 16, "--depth", 2,
               "--batch-size", 16, "--out", path)
    assert r.exit_code == 0, r.output
    return path


def invoke(*args, catch_exceptions=False):
    """Run the ddls CLI in-process; arguments may be paths or numbers. catch_exceptions=True keeps an
    uncaught exception in the result (result.exception) instead of raising it."""
    from click.testing import CliRunner

    from ddls.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=catch_exceptions)


def one_line_error(result, code=1):
    """The last line of a failed command, after checking it failed cleanly (exit `code`: 1 for a user
    error, 2 for a bad option; no traceback)."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    return lines[-1]
