"""`tether install`: CRDs, the controller namespace and its RBAC on the current cluster; idempotent."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from tether.cluster import Cluster
from tether.controller.install import install as install_all
from tether.controller.settings import DEFAULT_NAMESPACE


async def _install(kubeconfig: Path | None, context: str | None, namespace: str) -> list[str]:
    async with await Cluster.connect(kubeconfig, context) as cluster:
        return await install_all(cluster, namespace)


@click.command()
@click.option("--namespace", "-n", default=DEFAULT_NAMESPACE, show_default=True, envvar="TETHER_NAMESPACE")
@click.option("--kubeconfig", type=click.Path(dir_okay=False, path_type=Path), default=None, envvar="KUBECONFIG")
@click.option("--context", default=None, help="Kubeconfig context.")
def install(namespace: str, kubeconfig: Path | None, context: str | None) -> None:
    """Apply Tether's CRDs, the controller namespace and its RBAC (server-side apply; safe to repeat)."""
    for line in asyncio.run(_install(kubeconfig, context, namespace)):
        click.echo(f"applied {line}")
