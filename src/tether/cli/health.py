"""`tether health`: the health of the objects in a YAML file, as Tether would judge them live.

No cluster is needed: paste the live object (``kubectl get -o yaml``) into a file and see
which rule decides its health, which is how a Lua check is debugged. Exit code 0 whatever
the healths are; 2 when the file or the Lua directory cannot be used.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from tether.cli.common import fail
from tether.errors import TetherError
from tether.health import Assessment, LuaChecks, explain
from tether.render.manifests import ManifestError, objects_from_yaml

NO_HEALTH = "-"


MAX_FILE_BYTES = 64 * 1024 * 1024  # a `kubectl get -o yaml` of a large namespace fits many times over


def read_objects(path: Path | str, limit: int = MAX_FILE_BYTES) -> list[dict[str, Any]]:
    """The objects of a multi-document YAML file (``-``: stdin), ``kind: List`` flattened, parsed within
    the manifest limits and at most ``limit`` bytes.

    The input is untrusted like any manifest (an alias bomb, a ``!!binary`` value), so it goes
    through the same bounded loader and shape check as a render; errors name the file.
    """
    where = "stdin" if str(path) == "-" else str(path)
    try:
        if str(path) == "-":
            raw = sys.stdin.buffer.read(limit + 1)
        else:
            with Path(path).open("rb") as handle:
                raw = handle.read(limit + 1)
        if len(raw) > limit:
            raise TetherError(f"{where}: larger than {limit} bytes")
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TetherError(f"{where}: cannot read: {exc}") from None
    try:
        return objects_from_yaml(text)
    except ManifestError as exc:
        raise TetherError(f"{where}: {exc}") from None


def _row(obj: dict[str, Any], assessment: Assessment) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    health = assessment.health
    if health is not None:
        status, message = health.status.value, health.message
    else:
        status, message = None, assessment.check
    return {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "namespace": meta.get("namespace") or "",
        "name": meta.get("name") or "",
        "status": status,
        "message": message,
        "check": assessment.check,
        "printed": list(assessment.printed),
    }


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [("KIND", "NAMESPACE/NAME", "STATUS", "MESSAGE")]
    for row in rows:
        name = f"{row['namespace']}/{row['name']}" if row["namespace"] else row["name"]
        lines.append((str(row["kind"]), name, row["status"] or NO_HEALTH, " ".join(str(row["message"]).split())))
    widths = [max(len(line[column]) for line in lines) for column in range(3)]
    return (
        "\n".join(
            "   ".join(cell.ljust(width) for cell, width in zip(line[:3], widths, strict=True)) + "   " + line[3]
            for line in lines
        ).rstrip()
        + "\n"
    )


@click.command()
@click.argument(
    "object_files", metavar="OBJECT.yaml...", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False)
)
@click.option(
    "--lua-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Lua health checks laid out as <group>/<Kind>/health.lua (Argo CD's resource_customizations).",
)
@click.option(
    "--open-libs",
    is_flag=True,
    help="Give the --lua-dir scripts the full Lua standard library (string, math, …), as Argo CD does for its own.",
)
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True)
def health(object_files: tuple[Path, ...], lua_dir: Path | None, open_libs: bool, output: str) -> None:
    """Print the health (status and message) of each object in the OBJECT.yaml files; no cluster needed."""
    try:
        lua = LuaChecks(directory=lua_dir, open_libs=open_libs) if lua_dir is not None else None
        objects = [obj for path in object_files for obj in read_objects(path)]
    except TetherError as exc:
        fail(exc)
    rows = [_row(obj, explain(obj, lua=lua)) for obj in objects]
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(_table(rows), nl=False)
    for row in rows:
        for line in row["printed"]:
            click.echo(f"print from {row['kind']} {row['name']}: {line}", err=True)
