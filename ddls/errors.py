"""Errors a user can cause. The CLI prints them as one line; the library raises them."""


class DDLSError(Exception):
    """A mistake in input (file, option, model) that the user can fix; the message says how."""


class Interrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C. `resume_file` holds its progress, or is None when nothing was saved."""

    def __init__(self, resume_file=None):
        self.resume_file = resume_file
        super().__init__(f"interrupted; progress saved in {resume_file}" if resume_file is not None
                         else "interrupted before any progress was saved")


class NonFiniteEnergy(DDLSError):
    """Chains whose energy or gradient became NaN or inf."""

    def __init__(self, step: int, chains: list[int], eps: float, note: str = ""):
        self.step, self.chains, self.eps = step, chains, eps
        shown = ", ".join(str(c) for c in chains[:8]) + (", ..." if len(chains) > 8 else "")
        super().__init__(
            f"energy became NaN or inf by step {step} in {len(chains)} chain(s) [{shown}] "
            f"at eps={eps:g}{' ' + note if note else ''}; try a smaller eps"
            + ("" if note else ", or have such chains restarted (on-NaN policy 'restart')")
        )


class UnfinishedRun(DDLSError):
    """A resume file holds an interrupted run, and this run was not asked to resume it."""

    def __init__(self, state_file):
        self.state_file = state_file
        super().__init__(f"{state_file} holds an interrupted run; resume it to finish it, or delete it to start over")
