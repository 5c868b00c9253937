"""A progress bar over a post-hoc method's chunks x steps (on stderr, as the Langevin driver's)."""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Callable, Iterator


@contextmanager
def step_bar(on: bool, n: int, chunk_size: int, steps: int, desc: str) -> Iterator[Callable[[int], None]]:
    """Yields `advance(k)`; a no-op when off. Total: chunks x steps, one unit per step of a chunk."""
    if not on or steps <= 0:
        yield lambda k=1: None
        return
    from tqdm.auto import tqdm

    with tqdm(total=math.ceil(n / chunk_size) * steps, desc=desc, unit="step", leave=False,
              dynamic_ncols=True) as bar:
        yield bar.update
