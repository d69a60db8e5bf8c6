"""Every tool call is bounded in time and output; hitting a bound fails the render with a clear error."""

from pathlib import Path

import pytest

from tests.render.helpers import CORPUS, write_tree
from tether.model.source import ApplicationSource
from tether.render import RenderError, RenderLimits, render


async def test_output_cap(tmp_path: Path) -> None:
    source = ApplicationSource.model_validate({"repoURL": str(CORPUS), "path": "helm-guestbook"})
    with pytest.raises(
        RenderError, match=r"app 'gb': helm chart helm-guestbook: helm template: output exceeded the limit of 200 bytes"
    ):
        await render("gb", source, CORPUS, limits=RenderLimits(max_output=200))


async def test_timeout(tmp_path: Path) -> None:
    write_tree(tmp_path, {"slow.jsonnet": "std.foldl(function(acc, x) acc + x, std.range(0, 300000000), 0)"})
    source = ApplicationSource.model_validate({"repoURL": str(tmp_path)})
    with pytest.raises(RenderError, match=r"app 'slow': jsonnet in \.: jsonnet: timed out after 1s"):
        await render("slow", source, tmp_path, limits=RenderLimits(timeout=1))
