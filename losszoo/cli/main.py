"""``losszoo``: the entry point. Maps known errors to one line on stderr and an
exit code (0 ok, 1 a run or the program failed, 2 bad usage or recipe, 130
interrupted); ``LOSSZOO_DEBUG=1`` brings tracebacks back."""

from __future__ import annotations

import os
import sys

import typer
from typer.core import TyperGroup, TyperOption

from losszoo.cli import check, compare, console, landscape, listing, show, train
from losszoo.cli import report as report_command
from losszoo.cli.console import err_console, line
from losszoo.errors import LosszooError, RecipeError


def debug() -> bool:
    return os.environ.get("LOSSZOO_DEBUG", "") not in ("", "0")


_ERROR = ("error:", "bold red")


def report(error: LosszooError) -> None:
    if isinstance(error, RecipeError) and len(error.problems) > 1:
        err_console.print(line(_ERROR, f" the recipe has {len(error.problems)} problems:"))
        for problem in error.problems:
            err_console.print(f"  - {problem}")
    else:
        err_console.print(line(_ERROR, " ", str(error)))


class _Group(TyperGroup):
    """Turns losszoo's errors into a message and an exit code, under CliRunner too."""

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except LosszooError as error:
            if debug():
                raise
            report(error)
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            if debug():
                raise
            err_console.print(line(("interrupted:", "yellow"), " finished runs are kept; the same command goes on"))
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except Exception as error:  # a bug or a broken environment: one line, exit 1
            if debug():
                raise
            err_console.print(line(_ERROR, f" {type(error).__name__}: {error}"))
            err_console.print("(set LOSSZOO_DEBUG=1 for the traceback)", style="dim")
            raise typer.Exit(1) from None


_display_type = TyperOption.display_type_rich


def _flag_without_type(self: TyperOption, ctx) -> str | None:
    """An on/off flag takes no value: its help shows no ``<bool>`` type (Typer prints one for every option)."""
    return None if self.is_flag else _display_type(self, ctx)


TyperOption.display_type_rich = _flag_without_type

app = typer.Typer(
    cls=_Group,
    name="losszoo",
    help="A loss-function zoo for PyTorch: train recipes, compare losses, browse the registry.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from losszoo import __version__

        typer.echo(f"losszoo {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(False, "--version", "-V", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only results, warnings and errors."),
) -> None:
    """A loss-function zoo for PyTorch: train recipes, compare losses, browse the registry."""
    console.QUIET = quiet

app.command("train")(train.train)
app.command("compare")(compare.compare)
app.command("list")(listing.list_command)
app.command("show")(show.show)
app.command("check")(check.check)
app.command("landscape")(landscape.landscape)
app.command("report")(report_command.report)


def main() -> None:
    sys.exit(app(prog_name="losszoo"))
