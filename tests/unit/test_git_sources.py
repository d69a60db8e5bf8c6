"""The git sources the poller lists and webhooks match, read from raw Application objects."""

from __future__ import annotations

from pathlib import Path

from tether.controller.sources import GitSource, git_sources


def test_sources_in_order_with_head_for_an_unset_revision_and_charts_and_local_directories_left_out(
    tmp_path: Path,
) -> None:
    app = {
        "spec": {
            "sources": [
                {"repoURL": "https://git.example.com/org/app.git", "path": "deploy", "targetRevision": "v1.2.0"},
                {"repoURL": "https://charts.example.com", "chart": "redis", "targetRevision": "18.1.0"},
                {"repoURL": str(tmp_path), "path": "."},
                {"repoURL": "git@git.example.com:org/values.git", "ref": "values"},
                {"repoURL": "", "path": "x"},
                "not a source",
            ]
        }
    }
    assert list(git_sources(app)) == [
        GitSource(0, "https://git.example.com/org/app.git", "v1.2.0"),
        GitSource(3, "git@git.example.com:org/values.git", "HEAD"),
    ]


def test_a_single_source_and_malformed_objects() -> None:
    one = {"spec": {"source": {"repoURL": "https://g/x.git", "targetRevision": ""}}}
    assert list(git_sources(one)) == [GitSource(0, "https://g/x.git", "HEAD")]
    for broken in ({}, {"spec": None}, {"spec": {"sources": "x"}}, {"spec": {"source": None}}):
        assert list(git_sources(broken)) == []
