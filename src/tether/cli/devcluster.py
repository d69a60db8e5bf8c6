"""`tether devcluster`: the local control plane for the demo and the tests."""

from __future__ import annotations

import sys

import click

from tether.devcluster import cluster
from tether.errors import TetherError

_name = click.option("--name", default="default", show_default=True, help="Cluster name; several can run side by side.")


def _say(line: str) -> None:
    click.echo(line, err=True)


@click.group()
def devcluster() -> None:
    """A real local Kubernetes control plane (etcd, apiserver, controllers, scheduler, kwok)."""


@devcluster.command()
@_name
@click.option("--apiserver-port", type=int, default=None, help="Fixed kube-apiserver port (default: a free one).")
@click.option(
    "--timeout", type=float, default=cluster.READY_TIMEOUT, show_default=True, help="Seconds to wait for readiness."
)
def up(name: str, apiserver_port: int | None, timeout: float) -> None:
    """Build the binaries if needed, start the cluster and wait until it is usable."""
    try:
        state = cluster.up(name, apiserver_port=apiserver_port, timeout=timeout, log=_say)
    except TetherError as exc:
        _say(f"error: {exc}")
        sys.exit(2)
    click.echo(f"devcluster {name!r} is up: {state.server}")
    click.echo(f"  kubectl --kubeconfig {state.kubeconfig} get nodes")


@devcluster.command()
@_name
def down(name: str) -> None:
    """Stop exactly the processes `up` started and remove the cluster's data."""
    try:
        stopped = cluster.down(name)
    except TetherError as exc:
        _say(f"error: {exc}")
        sys.exit(2)
    click.echo(f"devcluster {name!r} stopped" if stopped else f"devcluster {name!r} is not up")


@devcluster.command()
@_name
def status(name: str) -> None:
    """Show each component and its pid; exit 1 if the cluster is not (fully) running."""
    components = cluster.status(name)
    if not components:
        click.echo(f"devcluster {name!r} is not up")
        sys.exit(1)
    state = cluster.load_state(name)
    assert state is not None
    click.echo(f"devcluster {name!r}: {state.server}")
    for component, pid in components.items():
        click.echo(f"  {component:<24} {'running, pid ' + str(pid) if pid else 'not running'}")
    if not all(components.values()):
        sys.exit(1)


@devcluster.command()
@_name
def kubeconfig(name: str) -> None:
    """Print the path of the cluster's kubeconfig."""
    try:
        click.echo(str(cluster.kubeconfig_path(name)))
    except TetherError as exc:
        _say(f"error: {exc}")
        sys.exit(2)
