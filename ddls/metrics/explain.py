"""FID taken apart: how much is the mean, how much the spread along each of the data's principal
directions, and which way (too narrow or too wide) the samples are off.

With S_d = U diag(lam) U^T the data's covariance and sig_i = u_i^T S_s u_i the samples' variance
along its i-th direction,

    FID = |mu_s - mu_d|^2                          mean: sum_i (u_i . (mu_s - mu_d))^2
        + sum_i (sqrt(sig_i) - sqrt(lam_i))^2      spread: each direction's variance against the data's
        + rotation                                 what the diagonal leaves: samples varying along other
                                                   directions than the data (>= 0; it is 0 when U also
                                                   diagonalises S_s)

because tr((S_s S_d)^(1/2)) = tr(M^(1/2)) with M = diag(lam)^(1/2) U^T S_s U diag(lam)^(1/2), and
the sum of square roots of M's diagonal (sum_i sqrt(lam_i sig_i)) bounds it from above. ratio
sig_i / lam_i < 1: too narrow along u_i; > 1: too wide.

What spreading could buy, measured rather than guessed: FID after the best single rescaling of the
samples around their mean (c = tr((S_s S_d)^(1/2)) / tr(S_s)), and after rescaling along each data
direction to the data's variance (all directions, and the leading k only).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from ..errors import DDLSError
from .fid import GaussianStats, fid, frechet_distance, trace_sqrt_product

DIRECTIONS = 10  # leading data directions shown
TINY = 1e-12  # variances at or below this (relative to the largest) count as zero


@dataclass(frozen=True)
class Direction:
    """One principal direction of the data (1 = largest variance)."""

    direction: int
    data_var: float
    sample_var: float
    ratio: float  # sample_var / data_var: < 1 too narrow, > 1 too wide
    mean_shift: float  # (u . (mu_s - mu_d))^2, its part of the mean term
    spread: float  # (sqrt(sample_var) - sqrt(data_var))^2, its part of the covariance term
    share: float  # spread / FID


@dataclass(frozen=True)
class FidSplit:
    fid: float
    mean: float  # |mu_s - mu_d|^2
    covariance: float  # FID - mean: spread + rotation
    spread: float  # sum over every direction of (sqrt(sig) - sqrt(lam))^2
    narrow: float  # the part of `spread` from directions where the samples vary less than the data
    wide: float  # ... more than the data
    rotation: float  # covariance - spread
    directions: list[Direction]  # the leading k
    rest: dict  # the other directions together: count, data_var, sample_var, ratio, mean_shift, spread, share
    top_share: float  # share of `spread` in the leading k directions
    half_directions: int  # fewest directions (largest spread first) holding half of `spread`
    dim: int
    best_scale: float  # the single rescaling of the samples that lowers FID most
    fid_scaled: float  # FID after it
    fid_matched: float  # FID with the variance along every data direction made the data's
    fid_matched_top: float  # ... along the leading k only
    verdict: str

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FidSplit":
        return cls(**{**d, "directions": [Direction(**row) for row in d["directions"]]})


def _part(share_of: float, value: float) -> float:
    return value / share_of if share_of > 0 else float("nan")


def _rescaled(samples: GaussianStats, vecs: np.ndarray, scale: np.ndarray) -> np.ndarray:
    t = (vecs * scale) @ vecs.T
    return t @ samples.sigma @ t


def split_fid(samples: GaussianStats, data: GaussianStats, k: int = DIRECTIONS) -> FidSplit:
    """FID of `samples` against `data` split into mean, spread along the data's directions, and rotation."""
    if samples.dim != data.dim:
        raise DDLSError(f"sample statistics are {samples.dim}-d and the data's {data.dim}-d; compute both in one "
                        f"feature space")
    if k < 1:
        raise DDLSError(f"show at least 1 direction, got {k}")
    k = min(k, data.dim)
    lam, vecs = np.linalg.eigh((data.sigma + data.sigma.T) / 2)
    order = np.argsort(lam)[::-1]
    lam, vecs = np.clip(lam[order], 0, None), vecs[:, order]
    sig = np.clip(np.einsum("di,de,ei->i", vecs, samples.sigma, vecs), 0, None)
    shift = (vecs.T @ (samples.mu - data.mu)) ** 2
    spread_i = (np.sqrt(sig) - np.sqrt(lam)) ** 2

    total = fid(samples, data)
    mean = float(shift.sum())
    tsp = trace_sqrt_product(samples.sigma, data.sigma)
    # the rotation term computed on its own (not as a remainder), so that the parts' sum checks FID
    rotation = max(2 * (float(np.sqrt(sig * lam).sum()) - tsp), 0.0)
    spread = float(spread_i.sum())
    narrow, wide = float(spread_i[sig < lam].sum()), float(spread_i[sig > lam].sum())

    floor = TINY * max(float(lam.max()), float(sig.max()), TINY)
    ratio = np.where(lam > floor, sig / np.where(lam > floor, lam, 1), np.nan)
    rows = [Direction(i + 1, float(lam[i]), float(sig[i]), float(ratio[i]), float(shift[i]), float(spread_i[i]),
                      _part(total, float(spread_i[i]))) for i in range(k)]
    tail = slice(k, None)
    rest_lam, rest_sig = float(lam[tail].sum()), float(sig[tail].sum())
    rest = {"count": int(data.dim - k), "data_var": rest_lam, "sample_var": rest_sig,
            "ratio": rest_sig / rest_lam if rest_lam > floor else float("nan"),
            "mean_shift": float(shift[tail].sum()), "spread": float(spread_i[tail].sum()),
            "share": _part(total, float(spread_i[tail].sum()))}
    ranked = np.cumsum(np.sort(spread_i)[::-1])
    half = int(np.searchsorted(ranked, 0.5 * spread) + 1) if spread > 0 else 0

    tr_s = float(np.trace(samples.sigma))
    best = tsp / tr_s if tr_s > floor else 1.0
    fid_scaled = max(mean + float(np.trace(data.sigma)) - tsp * best, 0.0) if tr_s > floor else total
    scale = np.where(sig > floor, np.sqrt(lam / np.where(sig > floor, sig, 1)), 1.0)  # a zero direction stays
    top_scale = np.concatenate([scale[:k], np.ones(data.dim - k)])
    matched = frechet_distance(samples.mu, _rescaled(samples, vecs, scale), data.mu, data.sigma)
    matched_top = frechet_distance(samples.mu, _rescaled(samples, vecs, top_scale), data.mu, data.sigma)

    parts = {"mean": mean, "narrow": narrow, "wide": wide, "rotation": rotation}
    split = FidSplit(total, mean, total - mean, spread, narrow, wide, rotation, rows, rest,
                     _part(spread, float(spread_i[:k].sum())), half, data.dim, best, fid_scaled, matched,
                     matched_top, "")
    return replace(split, verdict=verdict(parts, split))


def verdict(parts: dict[str, float], split: FidSplit) -> str:
    """One line: the part of FID a sampler can act on (mean, too narrow, too wide), and how much is rotation,
    which none of them fixes; rotation alone when it outweighs the others twice over."""
    if split.fid <= 0 or max(parts.values()) <= 0:
        return "the samples' statistics match the data's: nothing to split"

    def pct(v: float) -> str:
        return f"{100 * v / split.fid:.0f}% of FID"

    rotation = parts["rotation"]
    if rotation > 2 * (parts["mean"] + parts["narrow"] + parts["wide"]):
        return (f"rotation ({pct(rotation)}): the samples vary along other directions than the data; neither "
                f"spreading nor sharpening along the data's directions fixes that")
    where = (f"the leading {len(split.directions)} directions" if split.top_share >= 0.5
             else f"many directions ({split.half_directions} of {split.dim} hold half of it)")
    largest = max(("mean", "narrow", "wide"), key=parts.get)
    if largest == "mean":
        line = (f"mean shift ({pct(parts['mean'])}): the samples' average lies off the data's; moves toward the data "
                f"would help more than spread")
    elif largest == "narrow":
        gain = 100 * (split.fid_matched - split.fid) / split.fid
        line = (f"samples too narrow along {where} ({pct(parts['narrow'])}): spread would help (the data's variance "
                f"along every direction: FID {split.fid:.4g} -> {split.fid_matched:.4g}, {gain:+.0f}%)")
    else:
        line = f"samples too wide along {where} ({pct(parts['wide'])}): sharpening would help"
    if rotation >= split.fid / 3:
        line += f"; rotation, which neither fixes, is {pct(rotation)}"
    return line


def format_split(split: FidSplit | dict) -> str:
    """The split (or its to_dict()) as a printed table."""
    if isinstance(split, dict):
        split = FidSplit.from_dict(split)

    def pct(v: float) -> str:
        return f"{100 * v / split.fid:.1f}%" if split.fid > 0 else "-"

    def num(v: float) -> str:
        return "-" if v is None or not np.isfinite(v) else f"{v:.4g}"

    lines = [f"FID {split.fid:.4g} = mean {split.mean:.4g} ({pct(split.mean)}) + spread {split.spread:.4g} "
             f"({pct(split.spread)}) + rotation {split.rotation:.4g} ({pct(split.rotation)})",
             f"spread: too narrow {split.narrow:.4g} ({pct(split.narrow)}), too wide {split.wide:.4g} "
             f"({pct(split.wide)}); the leading {len(split.directions)} of {split.dim} directions hold "
             f"{100 * split.top_share:.0f}% of it, {split.half_directions} direction(s) half of it"]
    head = ["direction", "data_var", "sample_var", "ratio", "mean_shift", "spread", "share"]
    body = [[str(d.direction), num(d.data_var), num(d.sample_var), num(d.ratio), num(d.mean_shift), num(d.spread),
             pct(d.spread)] for d in split.directions]
    if split.rest["count"]:
        r = split.rest
        body.append([f"rest ({r['count']})", num(r["data_var"]), num(r["sample_var"]), num(r["ratio"]),
                     num(r["mean_shift"]), num(r["spread"]), pct(r["spread"])])
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    lines.append("  ".join(h.rjust(w) for h, w in zip(head, widths)))
    lines += ["  ".join(v.rjust(w) for v, w in zip(b, widths)) for b in body]

    def change(v: float) -> str:
        return f"{v:.4g} ({100 * (v - split.fid) / split.fid:+.0f}%)" if split.fid > 0 else f"{v:.4g}"

    lines.append(f"FID if the samples were rescaled by {split.best_scale:.3f} around their mean: "
                 f"{change(split.fid_scaled)}; with the data's variance along every direction: "
                 f"{change(split.fid_matched)}; along the leading {len(split.directions)}: "
                 f"{change(split.fid_matched_top)}")
    lines.append(f"verdict: {split.verdict}")
    return "\n".join(lines)
