"""`ddls tune`: find a sampling recipe for a checkpoint within a budget, with error bars.

- recipe.py: the Recipe (method, temperature, settings) and TUNED.pt, which carries it;
- schema.py: what a stored recipe must hold, each value checked as the `ddls sample` option it becomes;
- runnable.py: whether a recipe finishes in time (the "would run for days" check), before it runs;
- grid.py: the candidate grid and the budget;
- scoring.py: validation and report scorers (2-D EMD, image FID), each with intervals;
- run.py: successive halving over the candidates, the fallback to the generator alone, the report.
"""
from .grid import Budget, default_grid, parse_budget
from .recipe import GENERATOR, Recipe, read_recipe, write_tuned
from .run import TuneConfig, TuneResult, tune

__all__ = ["Budget", "GENERATOR", "Recipe", "TuneConfig", "TuneResult", "default_grid", "parse_budget",
           "read_recipe", "tune", "write_tuned"]
