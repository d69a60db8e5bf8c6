"""Tool stderr that quotes a secret value, Go-style or as JSON, is masked in the error Tether shows.

A value resolved from the real pass store (so registered with the process-wide redactor, as
in a controller that renders many apps) is echoed by a failing helm chart (``printf "%q"``,
``toJson``: real Go formatting) and by kustomize, which quotes an invalid label value Go-style.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
import yaml

from tests.render.helpers import render_local, write_tree
from tether.devcluster.passstore import PassStore
from tether.render import RenderError
from tether.secrets import REDACTOR, PassBackend, resolve_secrets


async def resolved_canary(pass_store: PassStore, tab: str = "\t") -> tuple[str, str]:
    """A value with a quote, a backslash, a tab and non-ASCII letters, resolved from pass: (token, value)."""
    token = f"cnry{secrets.token_hex(6)}"
    value = f'q"\\{tab}Äß-{token}-é'
    entry = f"tool/{secrets.token_hex(3)}"
    pass_store.insert(entry, value + "\n")
    backend = PassBackend(
        pass_store.store_dir, pass_store.gnupg_home, environ={"HOME": str(pass_store.store_dir.parent)}
    )
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"v": f"<pass:{entry}>"}}
    resolved = await resolve_secrets([obj], backend, app="other", redactor=REDACTOR)
    assert resolved.objects[0]["data"]["v"] == value
    return token, value


async def test_helm_failure_quoting_a_value_is_masked(pass_store: PassStore, tmp_path: Path) -> None:
    token, value = await resolved_canary(pass_store)
    write_tree(
        tmp_path,
        {
            "chart/Chart.yaml": "apiVersion: v2\nname: leak\nversion: 0.1.0\n",
            "chart/values.yaml": yaml.safe_dump({"token": value, "multi": f"line-one\n{value}\nline-three"}),
            "chart/templates/cm.yaml": (
                '{{ fail (printf "quoted %q json %s ascii %+q multi %q" .Values.token (toJson .Values.token)'
                " .Values.token .Values.multi) }}\n"
            ),
        },
    )
    with pytest.raises(RenderError) as caught:
        await render_local(tmp_path, "chart")
    message = str(caught.value)
    assert "helm template failed" in message and "quoted" in message and "multi" in message
    assert token not in message, message
    assert 'quoted "********" json "********" ascii "********"' in message


async def test_kustomize_failure_quoting_a_value_is_masked(pass_store: PassStore, tmp_path: Path) -> None:
    # No tab: kustomize's selector parser would stop there and print only a fragment.
    token, value = await resolved_canary(pass_store, tab="")
    kustomization = {
        "resources": ["cm.yaml"],
        "patches": [{"patch": "- op: add\n  path: /data/x\n  value: y\n", "target": {"labelSelector": f"a={value}"}}],
    }
    write_tree(
        tmp_path,
        {
            "app/kustomization.yaml": json.dumps(kustomization, ensure_ascii=False),
            "app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, labels: {a: b}}\n",
        },
    )
    with pytest.raises(RenderError) as caught:
        await render_local(tmp_path, "app")
    message = str(caught.value)
    assert 'invalid label value: "********"' in message, message
    assert token not in message
