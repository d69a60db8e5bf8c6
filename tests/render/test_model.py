import pytest
from pydantic import ValidationError

from tether.model.source import ApplicationSource, SourceType


def test_argocd_field_names_parse_and_dump() -> None:
    spec = {
        "repoURL": "https://git.example/apps.git",
        "path": "charts/web",
        "targetRevision": "main",
        "helm": {
            "releaseName": "web",
            "valueFiles": ["values-prod.yaml"],
            "parameters": [{"name": "replicas", "value": 3}, {"name": "tag", "value": "1.0", "forceString": True}],
            "valuesObject": {"a": 1},
            "skipCrds": True,
        },
    }
    source = ApplicationSource.model_validate(spec)
    assert source.helm is not None and source.helm.parameters[0].value == "3"
    assert source.explicit_type() is SourceType.HELM
    dumped = source.model_dump(by_alias=True, exclude_defaults=True)
    assert dumped["repoURL"] == spec["repoURL"] and list(dumped["helm"]["valueFiles"]) == ["values-prod.yaml"]


def test_typos_are_errors_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="helm.valueFile"):
        ApplicationSource.model_validate({"repoURL": "x", "helm": {"valueFile": ["a.yaml"]}})


def test_render_options_leave_out_where_and_when() -> None:
    a = ApplicationSource.model_validate(
        {"repoURL": "https://a", "targetRevision": "v1", "path": "p", "kustomize": {"namePrefix": "x-"}}
    )
    b = ApplicationSource.model_validate(
        {"repoURL": "https://b", "targetRevision": "v2", "path": "p", "kustomize": {"namePrefix": "x-"}}
    )
    c = ApplicationSource.model_validate({"repoURL": "https://b", "path": "p", "kustomize": {"namePrefix": "y-"}})
    assert a.render_options() == b.render_options() != c.render_options()


def test_two_explicit_types_are_refused() -> None:
    source = ApplicationSource.model_validate({"repoURL": "x", "helm": {}, "kustomize": {}})
    with pytest.raises(ValueError, match="more than one type"):
        source.explicit_type()


def test_empty_revision_means_head() -> None:
    assert ApplicationSource.model_validate({"repoURL": "x", "targetRevision": ""}).target_revision == "HEAD"
