"""`tether import`: Argo CD Application / AppProject manifests in, Tether Application / Project manifests out.

Reads each FILE (``-`` is stdin; multi-document YAML, ``kind: List`` flattened) and prints
the converted objects on stdout as YAML documents separated by ``---``, ready for
``kubectl apply -f -``. On stderr, one line per change worth knowing: each field dropped or
kept without effect (``warning: Application/x: spec.source.plugin: …``) and each object
skipped (ApplicationSets, other kinds).

Exit code 0 when everything read was converted, with or without warnings; 2 when an input
cannot be read or parsed (nothing is printed then) or an object is invalid even after
the unsupported fields are dropped (the other objects are still printed).
"""

from __future__ import annotations

import sys
from typing import Any

import click
import yaml

from tether.cli.common import EXIT_ERROR, fail
from tether.cli.health import read_objects
from tether.errors import TetherError
from tether.model.argocd import DEFAULT_NAMESPACE, convert

MAX_INPUT_BYTES = 16 * 1024 * 1024  # thousands of Applications; more is not a manifest someone wrote


def read_manifests(source: str) -> list[dict[str, Any]]:
    """The objects in one input (a path, or ``-`` for stdin), parsed with the bounded manifest loader."""
    return read_objects(source, MAX_INPUT_BYTES)


def dump_documents(objects: list[dict[str, Any]]) -> str:
    """YAML documents separated by ``---``, keys in the order they were read."""
    return "---\n".join(yaml.safe_dump(obj, sort_keys=False, width=120) for obj in objects)


@click.command("import")
@click.argument("files", nargs=-1, required=True)
@click.option(
    "--namespace",
    default=DEFAULT_NAMESPACE,
    show_default=True,
    help="Namespace for objects in Argo CD's namespace (argocd) or in none: the controller's namespace.",
)
def import_command(files: tuple[str, ...], namespace: str) -> None:
    """Print Tether manifests for the Argo CD Applications and AppProjects in FILES ('-' reads stdin)."""
    objects: list[dict[str, Any]] = []
    for source in files:
        try:
            objects.extend(read_manifests(source))
        except TetherError as exc:
            fail(exc)
    result = convert(objects, namespace)
    for note in result.notes:
        click.echo(f"warning: {note}", err=True)
    for skipped in result.skipped:
        click.echo(f"skipped: {skipped}", err=True)
    for error in result.errors:
        click.echo(f"error: {error}", err=True)
    if result.objects:
        click.echo(dump_documents(result.objects), nl=False)
    if result.errors:
        sys.exit(EXIT_ERROR)
