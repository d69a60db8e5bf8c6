"""The `tether` command: a thin shell over the library; each subcommand lives in its own module."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tether")
def main() -> None:
    """Tether: GitOps continuous delivery for Kubernetes."""


def _register() -> None:
    # Imported here so `tether.cli.<x>` modules can import `main`-free helpers without cycles.
    from tether.cli.devcluster import devcluster
    from tether.cli.render import render

    for command in (devcluster, render):
        main.add_command(command)


_register()
