from pathlib import Path

import pytest

from tests.render.helpers import write_tree
from tether.model.source import ApplicationSource, SourceType
from tether.render import RenderError
from tether.render.detect import detect_type, source_type


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"Chart.yaml": "name: x"}, SourceType.HELM),
        ({"kustomization.yaml": ""}, SourceType.KUSTOMIZE),
        ({"kustomization.yml": ""}, SourceType.KUSTOMIZE),
        ({"Kustomization": ""}, SourceType.KUSTOMIZE),
        ({"Chart.yaml": "", "kustomization.yaml": ""}, SourceType.KUSTOMIZE),  # Argo CD: kustomize wins
        ({"main.jsonnet": "{}"}, SourceType.DIRECTORY),  # jsonnet is part of directory apps
        ({"a.yaml": ""}, SourceType.DIRECTORY),
        ({"sub/Chart.yaml": ""}, SourceType.DIRECTORY),  # only the app directory itself counts
    ],
)
def test_detection_follows_argocd(tmp_path: Path, files: dict[str, str], expected: SourceType) -> None:
    write_tree(tmp_path, files)
    assert detect_type(tmp_path) is expected


def test_explicit_type_wins(tmp_path: Path) -> None:
    write_tree(tmp_path, {"Chart.yaml": ""})
    source = ApplicationSource.model_validate({"repoURL": "x", "directory": {}})
    assert source_type("app", source, tmp_path) is SourceType.DIRECTORY


def test_plugins_and_repository_charts_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="app 'a': source.plugin: config management plugins"):
        source_type("a", ApplicationSource.model_validate({"repoURL": "x", "plugin": {"name": "p"}}), tmp_path)
    with pytest.raises(RenderError, match="source.chart: Helm repository charts"):
        source_type("a", ApplicationSource.model_validate({"repoURL": "x", "chart": "redis"}), tmp_path)
