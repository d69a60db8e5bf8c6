"""Secret values never appear in any output, in any form, through the real command line.

Real parts: a `pass` store (GnuPG), the devcluster's API server, the `tether` command run
as a process. The canary values hold what escaping changes — a double quote, a backslash,
a tab, non-ASCII letters and an emoji — around a unique hex token that no escaping
changes: if any form of a value (raw, JSON-escaped, Go-quoted, cut into lines) reached an
output, its token would be there. Base64 forms are checked separately.
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.cli import tether
from tether.cluster import Cluster
from tether.devcluster.cluster import ClusterState
from tether.devcluster.passstore import PassStore

ENV_POINTER = "/spec/template/spec/containers/0/env/0/value"


@dataclass(frozen=True)
class Canary:
    """A value with every character class escaping touches, and the token that betrays any form of it."""

    token: str
    astral: str = ""  # a character outside the BMP (an emoji), which JSON escapes as a surrogate pair

    @property
    def value(self) -> str:
        return f'q"\\\tÄß{self.astral}-{self.token}-é'

    @classmethod
    def new(cls, astral: str = "") -> Canary:
        return cls(f"cnry{secrets.token_hex(6)}", astral)


def assert_hidden(result: subprocess.CompletedProcess[str], canaries: Iterable[Canary], *texts: str) -> None:
    """No canary's token, nor the base64 of any canary or site text, in stdout or stderr."""
    shown = result.stdout + result.stderr
    for canary in canaries:
        assert canary.token not in shown, shown
        assert base64.b64encode(canary.value.encode()).decode()[:-4] not in shown
    for text in texts:
        assert base64.b64encode(text.encode()).decode()[:-4] not in shown


def write(directory: Path, objects: list[dict]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for index, obj in enumerate(objects):
        (directory / f"{index:02d}-{obj['kind'].lower()}.yaml").write_text(yaml.safe_dump(obj, allow_unicode=True))
    return directory


def app_objects(entry: str, rotating: str) -> list[dict]:
    """A Secret, a ConfigMap and a Deployment reading values from pass: whole fields, inside text, multi-line."""
    labels = {"app": "web"}
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds"},
            "stringData": {"token": f"<pass:{entry}>"},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cfg"},
            "data": {
                "url": f"https://user:<pass:{rotating}>@db.example",
                "conf": f"listen 80;\npassword <pass:{entry}>;\nend;\n",
                "plain": "visible",
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {
                                "name": "web",
                                "image": "nginx:1.27",
                                "env": [{"name": "K", "value": f"<pass:{rotating}>"}],
                            }
                        ]
                    },
                },
            },
        },
    ]


def where(source: Path, app: str, namespace: str, devcluster: ClusterState) -> list[str]:
    return [str(source), "--app", app, "--dest-namespace", namespace, "--kubeconfig", devcluster.kubeconfig]


async def test_a_changed_entry_shows_as_changed_but_neither_value_shows(
    devcluster: ClusterState, kube: Cluster, namespace: str, pass_store: PassStore, tmp_path: Path
) -> None:
    entry, rotating = f"mask/{secrets.token_hex(3)}", f"mask/{secrets.token_hex(3)}"
    fixed, old, new = Canary.new(), Canary.new(), Canary.new()
    pass_store.insert(entry, fixed.value + "\n")
    pass_store.insert(rotating, old.value + "\n")
    source = write(tmp_path / "app", app_objects(entry, rotating))
    common = where(source, "mask-app", namespace, devcluster)
    every = (fixed, old, new)

    synced = tether("sync", *common, env=pass_store.env)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert_hidden(synced, every)
    live = await kube.get("apps/v1", "Deployment", "web", namespace)
    assert live["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == old.value  # the real value went in
    as_json = tether("sync", *common, "-o", "json", env=pass_store.env)
    assert as_json.returncode == 0, as_json.stdout + as_json.stderr
    assert_hidden(as_json, every)

    clean = tether("diff", *common, env=pass_store.env)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    pass_store.insert(rotating, new.value + "\n")
    text = tether("diff", *common, env=pass_store.env)
    assert text.returncode == 1, text.stdout + text.stderr
    assert_hidden(text, every)
    assert "-          value: ++++++++\n+          value: ++++++++ (changed)" in text.stdout
    assert "-  url: ++++++++\n+  url: ++++++++ (changed)" in text.stdout
    assert "Secret" not in text.stdout  # its value did not change

    report = tether("diff", *common, "-o", "json", env=pass_store.env)
    assert report.returncode == 1, report.stdout + report.stderr
    assert_hidden(report, every)
    by_name = {r["name"]: r for r in json.loads(report.stdout)["resources"]}
    assert by_name["web"]["changed"] == [ENV_POINTER]
    assert by_name["web"]["live"]["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == "++++++++"
    predicted_env = by_name["web"]["predicted"]["spec"]["template"]["spec"]["containers"][0]["env"][0]
    assert predicted_env["value"] == "++++++++ (changed)"
    assert by_name["cfg"]["changed"] == ["/data/url"]
    assert by_name["cfg"]["predicted"]["data"] == {
        "url": "++++++++ (changed)",
        "conf": "++++++++",
        "plain": "visible",
    }
    assert by_name["creds"]["status"] == "Synced"


async def test_api_server_errors_quoting_a_value_are_masked_in_every_output(
    devcluster: ClusterState, namespace: str, pass_store: PassStore, tmp_path: Path
) -> None:
    """The API server rejects an invalid label value and quotes it Go-style (``Invalid value: "q\\"\\\\..."``)."""
    entry = f"mask/{secrets.token_hex(3)}"
    canary = Canary.new()
    pass_store.insert(entry, canary.value + "\n")
    bad = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "bad-labels",
            "labels": {"whole": f"<pass:{entry}>", "multi-line": f"line-one\n<pass:{entry}>"},
        },
        "data": {"a": "b"},
    }
    source = write(tmp_path / "bad", [bad])
    common = where(source, "mask-bad", namespace, devcluster)

    for args, code in (
        (("sync", *common), 1),
        (("sync", *common, "-o", "json"), 1),
        (("diff", *common), 1),
        (("diff", *common, "-o", "json"), 1),
    ):
        result = tether(*args, env=pass_store.env)
        assert result.returncode == code, result.stdout + result.stderr
        assert "Invalid value" in result.stdout + result.stderr  # the server did echo the values
        assert_hidden(result, [canary], f"line-one\n{canary.value}")
        assert 'Invalid value: "********"' in result.stdout + result.stderr or 'Invalid value: \\"********\\"' in (
            result.stdout + result.stderr
        )


def test_render_masks_placeholder_fields_unless_asked(pass_store: PassStore, tmp_path: Path) -> None:
    entry, rotating = f"mask/{secrets.token_hex(3)}", f"mask/{secrets.token_hex(3)}"
    first, second = Canary.new(), Canary.new()
    pass_store.insert(entry, first.value + "\n")
    pass_store.insert(rotating, second.value + "\n")
    source = write(tmp_path / "app", app_objects(entry, rotating))
    for output in ("yaml", "json"):
        masked = tether("render", str(source), "-o", output, env=pass_store.env)
        assert masked.returncode == 0, masked.stderr
        assert_hidden(masked, [first, second])
        objects = json.loads(masked.stdout) if output == "json" else list(yaml.safe_load_all(masked.stdout))
        by_kind = {o["kind"]: o for o in objects}
        assert by_kind["ConfigMap"]["data"] == {"url": "********", "conf": "********", "plain": "visible"}
        assert by_kind["Deployment"]["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == "********"
    shown = tether("render", str(source), "-o", "json", "--show-secrets", env=pass_store.env)
    assert shown.returncode == 0 and first.token in shown.stdout and second.token in shown.stdout


def test_a_value_with_an_emoji_syncs_and_stays_masked(
    devcluster: ClusterState, namespace: str, pass_store: PassStore, tmp_path: Path
) -> None:
    entry = f"mask/{secrets.token_hex(3)}"
    canary = Canary.new(astral="😀")
    pass_store.insert(entry, canary.value + "\n")
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "emoji"}, "data": {"v": f"<pass:{entry}>"}}
    synced = tether(
        "sync", *where(write(tmp_path / "e", [obj]), "mask-emoji", namespace, devcluster), env=pass_store.env
    )
    assert_hidden(synced, [canary])
    assert synced.returncode == 0, synced.stdout + synced.stderr
