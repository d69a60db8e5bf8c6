"""Whatever goes wrong in a command ends as one ``error:`` line on stderr and exit 2, never a traceback."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from tether.cli import main
from tether.errors import TetherError


@pytest.fixture
def broken() -> Iterator[str]:
    """A subcommand that fails the way a bug would, registered for the test only."""

    @click.command("broken-for-test")
    @click.argument("how")
    def command(how: str) -> None:
        click.echo("partial result")
        if how == "bug":
            raise KeyError("spec")
        raise TetherError("app 'web': manifest a.yaml: document 1: spec: must be a mapping, not list")

    main.add_command(command)
    yield "broken-for-test"
    main.commands.pop("broken-for-test")


def test_an_unexpected_exception_is_one_line_and_exit_2(broken: str) -> None:
    result = CliRunner().invoke(main, [broken, "bug"])
    assert result.exit_code == 2
    assert result.stdout == "partial result\n"
    assert result.stderr == "error: internal error (KeyError): 'spec' (run with -vv for the traceback)\n"


def test_the_traceback_is_shown_on_request(broken: str) -> None:
    result = CliRunner().invoke(main, ["-vv", broken, "bug"])
    assert result.exit_code == 2
    assert "Traceback (most recent call last):" in result.stderr
    assert result.stderr.endswith("error: internal error (KeyError): 'spec' (run with -vv for the traceback)\n")


def test_a_tether_error_a_command_left_unhandled_is_one_line(broken: str) -> None:
    result = CliRunner().invoke(main, [broken, "error"])
    assert result.exit_code == 2
    assert result.stderr == "error: app 'web': manifest a.yaml: document 1: spec: must be a mapping, not list\n"


def test_usage_errors_stay_clicks(broken: str) -> None:
    result = CliRunner().invoke(main, [broken])
    assert result.exit_code == 2
    assert "Missing argument 'HOW'" in result.stderr
