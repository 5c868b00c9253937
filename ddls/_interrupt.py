"""Ctrl-C that lands between steps: the first press asks the loop to stop at its next step boundary,
where `save` can write exactly what a resume needs; a second press stops at once.

`deferred_interrupt()` is entered by the run modules (a `ddls train` or `ddls sample` run);
the loops call `stop_requested()` once per step. Outside such a block (the Python API, a
thread other than the main one, a program with its own SIGINT handler) Ctrl-C is left as it is.
"""
from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Iterator

_requests: list[list[bool]] = []  # one flag per active block, innermost last


def stop_requested() -> bool:
    """True once Ctrl-C was pressed inside the innermost deferred_interrupt block."""
    return bool(_requests) and _requests[-1][0]


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    flag = [False]

    def handle(signum, frame):
        if flag[0]:
            raise KeyboardInterrupt
        flag[0] = True
        print("\nstopping after this step and saving progress (Ctrl-C again to stop at once)", file=sys.stderr)

    _requests.append(flag)
    signal.signal(signal.SIGINT, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _requests.remove(flag)
