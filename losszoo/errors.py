"""The errors losszoo raises on purpose; the CLI maps each to one line and an exit code."""

from __future__ import annotations


class LosszooError(Exception):
    """Base of every error that is the user's to fix (exit code 2 at the CLI)."""

    exit_code = 2


class UnknownNameError(LosszooError, KeyError):
    """A registry name that does not exist; the message lists close matches."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidParameterError(LosszooError, ValueError):
    """A hyperparameter that is unknown, of the wrong type or out of bounds."""

    def __init__(self, message: str, parameter: str | None = None):
        super().__init__(message)
        self.parameter = parameter


class RecipeError(LosszooError):
    """One or more problems in a recipe, each with its file, line and dotted path."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class DataError(LosszooError):
    """A user data file that is missing, empty or malformed; ``key`` is the recipe key to fix."""

    def __init__(self, message: str, key: str = "path"):
        super().__init__(message)
        self.key = key


class RunError(LosszooError):
    """A run or the program failed for a reason other than the user's input (exit 1)."""

    exit_code = 1
