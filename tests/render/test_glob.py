import pytest

from tether.render.glob import GlobSyntaxError, glob_match


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("*.yaml", "a.yaml", True),
        ("*.yaml", "sub/dir/a.yaml", True),  # no separators: * crosses '/' as in Argo CD
        ("*.yaml", "a.yml", False),
        ("{config.json,env-usw2/*}", "config.json", True),
        ("{config.json,env-usw2/*}", "env-usw2/deploy.yaml", True),
        ("{config.json,env-usw2/*}", "env-use1/deploy.yaml", False),
        ("{a,{b,c}*}.yaml", "cx.yaml", True),
        ("?.yaml", "ab.yaml", False),
        ("[a-c].yaml", "b.yaml", True),
        ("[!a-c].yaml", "b.yaml", False),
        ("\\*.yaml", "*.yaml", True),
        ("\\*.yaml", "x.yaml", False),
        ("**/prod-*", "overlays/prod-1", True),
    ],
)
def test_argocd_glob_semantics(pattern: str, path: str, expected: bool) -> None:
    assert glob_match(pattern, path) is expected


@pytest.mark.parametrize("pattern", ["{a,b", "a}", "[abc", "x\\"])
def test_bad_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(GlobSyntaxError):
        glob_match(pattern, "a")
