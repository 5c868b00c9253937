"""Will a recipe finish? Its network passes per sample, one after another, against the limit the
sampling driver puts on a whole run (ddls.sampling.budget): a stored recipe beyond it would run
for days and is refused before anything runs. `read_runnable` reads TUNED.pt's recipe with every
check a run needs: its fields (ddls.tuning.schema), then its time."""
from __future__ import annotations

import math
import os

from ..errors import DDLSError
from .grid import evaluations_per_sample
from .recipe import RERUN, Recipe, read_recipe


def check_finishes(recipe: Recipe, where: str = "the recipe") -> Recipe:
    """`recipe`, unless one chain of it makes more network passes, one after another, than a whole run may."""
    from ..sampling.budget import MAX_SEQUENTIAL_STEPS

    try:
        passes = evaluations_per_sample(recipe, 1)  # n = 1: every pass of a pilot or pool falls on one sample
    except KeyError:  # a method registered without a forecast: its own checks are all there is
        return recipe
    if not passes <= MAX_SEQUENTIAL_STEPS:
        shown = f"{passes:,.0f}" if math.isfinite(passes) else str(passes)
        label = recipe.label if len(recipe.label) <= 80 else recipe.label[:77] + "..."
        raise DDLSError(f"{where}: recipe {label} makes {shown} network passes per sample, one after another, "
                        f"more than the {MAX_SEQUENTIAL_STEPS:,} a run may: it would run for days; {RERUN}")
    return recipe


def read_runnable(path: str | os.PathLike) -> Recipe | None:
    """The recipe in TUNED.pt, checked field by field and for its time, or None for a checkpoint that holds none."""
    recipe = read_recipe(path)
    return None if recipe is None else check_finishes(recipe, str(path))
