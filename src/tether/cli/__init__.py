"""The `tether` command: a thin shell over the library; each subcommand lives in its own module."""

from __future__ import annotations

import logging

import click

from tether import log
from tether.cli.signals import guard_signals


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tether")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-v info, -vv debug).")
@click.option("--log-json", is_flag=True, help="Logs as JSON lines.")
def main(verbose: int, log_json: bool) -> None:
    """Tether: GitOps continuous delivery for Kubernetes."""
    guard_signals(click.get_current_context().call_on_close)
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    log.configure(level, json_output=log_json)


def _register() -> None:
    # Imported here so `tether.cli.<x>` modules can import `main`-free helpers without cycles.
    from tether.cli.devcluster import devcluster
    from tether.cli.diff import diff
    from tether.cli.health import health
    from tether.cli.render import render
    from tether.cli.sync import sync

    for command in (devcluster, render, diff, sync, health):
        main.add_command(command)


_register()
