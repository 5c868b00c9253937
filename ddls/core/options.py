"""The ranges numbers are held to, wherever they come from: the command line's options (ddls.cli) and
the settings a file stores for a later run (a tuned recipe, ddls.tuning.schema). Both read them here,
so a value a file holds is refused exactly when the same value typed as an option would be."""
from __future__ import annotations

import click

TINY = 1e-30  # below this a float32 step, scale or rate does nothing (1e-320 is a no-op)
HUGE = 1e30  # above this float32 arithmetic overflows at once (1e39 is inf in float32)
MAX_INT = 2 ** 31 - 1  # counts and sizes: chains, steps, widths, batch


class Bounded(click.FloatRange):
    """A finite float in [min, max]; nonzero values below TINY in size are refused as having no effect."""

    def __init__(self, min: float | None = 0.0, max: float | None = HUGE, *, min_open: bool = False,
                 max_open: bool = False):
        super().__init__(min=min, max=max, min_open=min_open, max_open=max_open)

    def convert(self, value, param, ctx):
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        except OverflowError:
            number = float("inf")
        if number != number or number in (float("inf"), float("-inf")):
            self.fail(f"{value!r} is not a finite number; allowed: {self._describe_range()}", param, ctx)
        if number != 0 and abs(number) < TINY:
            self.fail(f"{value!r} is too small to have any effect (under {TINY:g}); allowed: "
                      f"{self._describe_range()}", param, ctx)
        return super().convert(number, param, ctx)


def count(low: int, high: int = MAX_INT) -> click.IntRange:
    """A whole number in [low, high]."""
    return click.IntRange(min=low, max=high)


POSITIVE = Bounded(TINY, HUGE)
NONNEG = Bounded(0.0, HUGE)
LR = Bounded(1e-12, 100.0)  # a learning rate beyond 100 overflows any optimiser's first step
SEED = count(0, 2 ** 63 - 1)  # seeds are mixed as 64-bit numbers: 2**64 would be seed 0 again
STEPS = 10 ** 7  # Langevin or training steps of one run (hours on a CPU)


def bounded(kind: click.ParamType) -> click.ParamType:
    """`kind` with finite bounds: an integer without an upper bound gets MAX_INT, a float range becomes
    `Bounded` (no NaN, no inf, nothing below TINY), a plain float or int a bounded one. Types with their
    own bounds keep them."""
    if isinstance(kind, Bounded):
        return kind
    if isinstance(kind, click.FloatRange):
        return Bounded(-HUGE if kind.min is None else kind.min, HUGE if kind.max is None else kind.max,
                       min_open=kind.min_open, max_open=kind.max_open)
    if isinstance(kind, click.IntRange):
        if kind.max is None:
            kind.max = MAX_INT
        if kind.min is None:
            kind.min = -MAX_INT
        return kind
    if kind is click.FLOAT:
        return Bounded(-HUGE, HUGE)
    if kind is click.INT:
        return count(-MAX_INT, MAX_INT)
    return kind
