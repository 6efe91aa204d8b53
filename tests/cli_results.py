"""How the command-line tests read a CliRunner result: a success, or a user error (exit code,
SystemExit, no traceback). One copy for every test file that runs commands."""

from __future__ import annotations


def flat(text: str) -> str:
    """``text`` on one line with single spaces: rich wraps long lines."""
    return " ".join(text.split())


def ok(result) -> str:
    """The output of a command that must have succeeded."""
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def user_error(result, code: int = 1) -> str:
    """The flattened output of a command that must have refused its input with exit ``code``."""
    assert result.exit_code == code, result.output + repr(result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # no traceback
    assert "Traceback" not in result.output
    return flat(result.output)
