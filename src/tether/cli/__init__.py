"""The `tether` command: a thin shell over the library; each subcommand lives in its own module.

Every command prints its result on stdout and anything that went wrong on stderr, as one
``error: …`` line with exit code 2, whatever failed: a ``TetherError`` a command did not
handle itself, or an unexpected exception (a bug, shown with its traceback at ``-vv``).
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

import click

from tether import log
from tether.cli.signals import guard_signals
from tether.errors import TetherError


class TetherGroup(click.Group):
    """A group whose commands never end in a traceback: errors become one line on stderr, exit 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise  # click's own: usage errors (exit 2), --help, --version
        except TetherError as exc:
            from tether.cli.common import fail

            fail(exc)
        except Exception as exc:  # a bug; the user still gets one line, the traceback only on request
            from tether.cli.common import fail

            if ctx.params.get("verbose", 0) >= 2:
                click.echo("".join(traceback.format_exception(exc)).rstrip(), err=True)
            fail(RuntimeError(f"internal error ({type(exc).__name__}): {exc} (run with -vv for the traceback)"))


@click.group(cls=TetherGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tether")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-v info, -vv debug).")
@click.option("--log-json", is_flag=True, help="Logs as JSON lines.")
def main(verbose: int, log_json: bool) -> None:
    """Tether: GitOps continuous delivery for Kubernetes."""
    ctx = click.get_current_context()
    ctx.obj = {"signal_guard": guard_signals(ctx.call_on_close)}  # `serve` takes signals over for its graceful stop
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    log.configure(level, json_output=log_json)


def _register() -> None:
    # Imported here so `tether.cli.<x>` modules can import `main`-free helpers without cycles.
    from tether.cli.devcluster import devcluster
    from tether.cli.diff import diff
    from tether.cli.health import health
    from tether.cli.importing import import_command
    from tether.cli.install import install
    from tether.cli.render import render
    from tether.cli.serve import serve
    from tether.cli.sync import sync

    for command in (devcluster, render, diff, sync, health, install, import_command, serve):
        main.add_command(command)


_register()
