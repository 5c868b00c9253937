"""Figures people would rather look at than read: sweeps, samples, loss curves."""
from __future__ import annotations

import math
import os

import numpy as np

from ..io.outputs import save_figure


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def sweep_figure_2d(rows: list[dict], samples: list[np.ndarray], reference: np.ndarray,
                    path: str | os.PathLike, title: str = "") -> None:
    """Metrics against eps (generator alone as dashed lines) beside a scatter per row."""
    plt = _pyplot()
    n = len(rows)
    cols = min(n, 3)
    srows = math.ceil(n / cols)
    fig = plt.figure(figsize=(5 + 3.2 * cols, max(4.0, 3.2 * srows)))
    grid = fig.add_gridspec(srows, cols + 2, wspace=0.45)
    ax = fig.add_subplot(grid[:, :2])
    sampled = [r for r in rows if r["eps"] is not None]
    eps = [r["eps"] for r in sampled]
    base = rows[0]
    ax.plot(eps, [r["emd"] for r in sampled], "o-", color="C0", label="EMD (DDLS)")
    ax.axhline(base["emd"], color="C0", ls="--", label="EMD (generator)")
    ax.set_xscale("log")
    ax.set_xlabel("eps")
    ax.set_ylabel("EMD (lower is better)")
    if base.get("hq") is not None:
        ax2 = ax.twinx()
        ax2.plot(eps, [r["hq"] for r in sampled], "s-", color="C1", label="high quality % (DDLS)")
        ax2.axhline(base["hq"], color="C1", ls="--", label="high quality % (generator)")
        ax2.set_ylabel("high-quality samples, %")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="best")
    else:
        ax.legend(fontsize=8)
    ax.set_title(title or "DDLS step-size sweep")
    lim = np.abs(reference).max() * 1.25
    for i, (row, x) in enumerate(zip(rows, samples)):
        sax = fig.add_subplot(grid[i // cols, 2 + i % cols])
        sax.scatter(reference[:, 0], reference[:, 1], s=1, c="0.8", rasterized=True)
        sax.scatter(x[:, 0], x[:, 1], s=1, c="C3", alpha=0.5, rasterized=True)
        label = "generator" if row["eps"] is None else f"eps={row['eps']:g}"
        sax.set_title(f"{label}\nEMD {row['emd']:.4f}" + (f", HQ {row['hq']:.1f}%" if row.get("hq") is not None else ""),
                      fontsize=9)
        sax.set_xlim(-lim, lim)
        sax.set_ylim(-lim, lim)
        sax.set_aspect("equal")
        sax.set_xticks([])
        sax.set_yticks([])
    save_figure(path, fig)
    plt.close(fig)


def loss_figure(history: dict[str, list[float]], path: str | os.PathLike, title: str = "") -> None:
    """Loss curves; BEGAN's convergence measure M_global and k_t get a panel of their own."""
    plt = _pyplot()
    extra = [k for k in ("m_global", "k") if history.get(k)]
    fig, axes = plt.subplots(1, 1 + bool(extra), figsize=(6 + 5 * bool(extra), 3.5), squeeze=False)
    ax = axes[0, 0]
    for key in history:
        if key not in ("step", "m_global", "k"):
            ax.plot(history["step"], history[key], label=key)
    ax.set_xlabel("step")
    ax.legend()
    ax.set_title(title or "training losses")
    if extra:
        bx = axes[0, 1]
        bx.plot(history["step"], history["m_global"], color="C2", label="M_global (lower is better)")
        bx.set_xlabel("step")
        bx.set_ylabel("M_global")
        kx = bx.twinx()
        kx.plot(history["step"], history["k"], color="C3", ls="--", label="k_t")
        kx.set_ylabel("k_t")
        h1, l1 = bx.get_legend_handles_labels()
        h2, l2 = kx.get_legend_handles_labels()
        bx.legend(h1 + h2, l1 + l2, fontsize=8)
        bx.set_title("BEGAN convergence")
    fig.tight_layout()
    save_figure(path, fig)
    plt.close(fig)


def _has_pr(rows: list[dict] | None) -> bool:
    return bool(rows) and all(r.get("precision") is not None and r.get("recall") is not None for r in rows)


def precision_recall_panel(ax, labels: list[str], rows: list[dict]) -> None:
    """Each row as a point (recall, precision), with its 95% intervals where the rows hold them."""
    for i, (label, row) in enumerate(zip(labels, rows)):
        x, y = row["recall"], row["precision"]
        err = {}
        if row.get("recall_lo") is not None and np.isfinite(row["recall_lo"]):
            err["xerr"] = [[max(x - row["recall_lo"], 0)], [max(row["recall_hi"] - x, 0)]]
        if row.get("precision_lo") is not None and np.isfinite(row["precision_lo"]):
            err["yerr"] = [[max(y - row["precision_lo"], 0)], [max(row["precision_hi"] - y, 0)]]
        ax.errorbar([x], [y], fmt="s" if i == 0 else "o", color=f"C{i % 10}", ms=6, capsize=2, label=label, **err)
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.set_xlabel("recall: data reached", fontsize=8)
    ax.set_ylabel("precision: look real", fontsize=8, labelpad=1)
    ax.tick_params(labelsize=7)
    ax.set_title("precision vs recall\n(higher is better)", fontsize=9)


def samples_figure_2d(labels: list[str], rows: list[dict], samples: list[np.ndarray], reference: np.ndarray,
                      path: str | os.PathLike, title: str = "") -> None:
    """One scatter per row over the data (grey), titled with its label and metrics; then precision
    against recall, when the rows hold them."""
    plt = _pyplot()
    panels = len(rows) + _has_pr(rows)
    cols = min(panels, 4)
    nrows = math.ceil(panels / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 3.4 * nrows), squeeze=False)
    lim = np.abs(reference).max() * 1.25
    for ax in axes.flat[len(rows):]:
        ax.axis("off")
    if _has_pr(rows):
        ax = axes.flat[len(rows)]
        ax.axis("on")
        precision_recall_panel(ax, labels, rows)
    for ax, label, row, x in zip(axes.flat, labels, rows, samples):
        ax.scatter(reference[:, 0], reference[:, 1], s=1, c="0.8", rasterized=True)
        ax.scatter(x[:, 0], x[:, 1], s=1, c="C3", alpha=0.5, rasterized=True)
        hq = f", HQ {row['hq']:.1f}%" if row.get("hq") is not None else ""
        ax.set_title(f"{label}\nEMD {row['emd']:.4f}{hq}", fontsize=9)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    save_figure(path, fig)
    plt.close(fig)


def image_tiles(images: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """(rows*cols, C, H, W) in [-1, 1] -> one (rows*H, cols*W[, 3]) array in [0, 1], row-major."""
    n, c, h, w = images.shape
    if n != rows * cols:
        raise ValueError(f"{n} images do not fill a {rows}x{cols} grid")
    x = np.clip((images + 1) / 2, 0, 1).reshape(rows, cols, c, h, w).transpose(0, 3, 1, 4, 2)
    x = x.reshape(rows * h, cols * w, c)
    return x[..., 0] if c == 1 else x


def samples_figure_images(labels: list[str], captions: list[str], samples: list[np.ndarray],
                          path: str | os.PathLike, title: str = "", rows: int = 8, cols: int = 4,
                          metrics: list[dict] | None = None) -> None:
    """The first rows*cols images (N, C, H, W) in [-1, 1] of each set, one panel per set, side by side;
    then precision against recall, when `metrics` (one dict per set) hold them."""
    plt = _pyplot()
    shown = rows * cols
    h, w = samples[0].shape[-2:]
    width = 1.8 * cols / 4  # inches per panel
    pr = 2.0 if _has_pr(metrics) else 0  # the precision-recall panel's width, in image panels
    fig, axes = plt.subplots(1, len(samples) + bool(pr), figsize=(max(4.0, width * (len(samples) + pr)),
                                                                   max(width * rows * h / (cols * w), 3.0) + 0.8),
                             squeeze=False, layout="constrained",
                             gridspec_kw={"width_ratios": [1] * len(samples) + ([pr] if pr else [])})
    if pr:
        precision_recall_panel(axes[0, -1], labels, metrics)
    for ax, label, caption, x in zip(axes.flat, labels, captions, samples):
        x = np.asarray(x[:shown], dtype=np.float32)
        if len(x) < shown:  # fewer samples than cells: blank (white) cells fill the grid
            x = np.concatenate([x, np.ones((shown - len(x), *x.shape[1:]), np.float32)])
        grid = image_tiles(x, rows, cols)
        ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"{label}\n{caption}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(path, fig)
    plt.close(fig)


def sweep_figure_images(rows: list[dict], path: str | os.PathLike, metric: str = "fid", title: str = "") -> None:
    """FID against eps, the generator alone as a dashed line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    sampled = [r for r in rows if r["eps"] is not None]
    ax.plot([r["eps"] for r in sampled], [r[metric] for r in sampled], "o-", color="C0", label=f"{metric.upper()} (DDLS)")
    ax.axhline(rows[0][metric], color="C0", ls="--", label=f"{metric.upper()} (generator)")
    ax.set_xscale("log")
    ax.set_xlabel("eps")
    ax.set_ylabel(f"{metric.upper()} (lower is better)")
    ax.legend(fontsize=8)
    ax.set_title(title or "DDLS step-size sweep")
    save_figure(path, fig)
    plt.close(fig)


def chains_figure(trajectory: np.ndarray, record_steps: list[int], path: str | os.PathLike, title: str = "") -> None:
    """One row per chain, one column per recorded step: trajectory (R, N, C, H, W) in [-1, 1]."""
    plt = _pyplot()
    r, n = trajectory.shape[:2]
    grid = image_tiles(trajectory.transpose(1, 0, 2, 3, 4).reshape(r * n, *trajectory.shape[2:]), n, r)
    h, w = trajectory.shape[-2:]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * r), max(2.0, 0.45 * n + 0.6)))
    ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([w * i + w / 2 - 0.5 for i in range(r)])
    ax.set_xticklabels([str(s) for s in record_steps], fontsize=6, rotation=90)
    ax.set_yticks([])
    ax.set_xlabel("Langevin step")
    ax.set_title(title or "DDLS chains", fontsize=9)
    save_figure(path, fig)
    plt.close(fig)
