"""The `ddls` command line: one module per group of commands, each a thin layer over the library."""
from __future__ import annotations

import click

from ..errors import DDLSError, Interrupted, UnfinishedRun
from . import metrics, models, posthoc, sample, sweep, train, tune
from .common import bound_options, echo_err
from .environment import name_envvars, warn_unknown

# Library errors that the command line words in its own terms (its flags), by type.
CLI_WORDING = {
    UnfinishedRun: lambda exc: f"{exc.state_file} holds an interrupted run; add --resume to finish it, "
                               f"or delete it to start over",
}


class _Group(click.Group):
    """User errors from the library become one line and exit code 1; an interrupted run says how to
    finish it, with exit code 130 (as for Ctrl-C)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except DDLSError as exc:
            wording = CLI_WORDING.get(type(exc))
            raise click.ClickException(wording(exc) if wording else str(exc)) from None
        except Interrupted as exc:
            how = "; run the same command with --resume to finish it" if exc.resume_file is not None else ""
            click.echo(f"{exc}{how}", err=True)
            ctx.exit(130)
        except OSError as exc:  # a file a command reads or writes: no permission, a full disk
            from ..io.outputs import os_error_line

            raise click.ClickException(os_error_line(exc)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "DDLS"})
@click.version_option(package_name="ddls")
def cli():
    """Discriminator Driven Latent Sampling: better samples from a trained GAN."""
    warn_unknown(ENVVARS, echo_err)


for command in (train.train, sample.sample, sweep.sweep, models.calibrate, models.inspect, models.export,
                metrics.eval_cmd, metrics.stats, metrics.inception, metrics.classifier_cmd, posthoc.compare, tune.tune):
    cli.add_command(command)
bound_options(cli)  # every number has a finite range, whoever declared the option
ENVVARS = name_envvars(cli)  # DDLS_<COMMAND>_<OPTION>


def main() -> None:
    import signal
    import sys

    # `kill` (SIGTERM) unwinds like Ctrl-C: locks and unfinished spools are removed, resume files kept
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    cli(prog_name="ddls")


if __name__ == "__main__":
    main()
