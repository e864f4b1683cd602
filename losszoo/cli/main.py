"""``losszoo``: the entry point. Maps known errors to one line on stderr and an
exit code (0 ok, 1 a run or the program failed, 2 bad usage or recipe, 130
interrupted); ``LOSSZOO_DEBUG=1`` brings tracebacks back."""

from __future__ import annotations

import os
import sys

import typer
from typer.core import TyperGroup

from losszoo.cli import check, compare, landscape, listing, show, train
from losszoo.cli.console import err_console
from losszoo.errors import LosszooError, RecipeError


def debug() -> bool:
    return os.environ.get("LOSSZOO_DEBUG", "") not in ("", "0")


def report(error: LosszooError) -> None:
    if isinstance(error, RecipeError) and len(error.problems) > 1:
        err_console.print(f"[bold red]error:[/] the recipe has {len(error.problems)} problems:")
        for problem in error.problems:
            err_console.print(f"  - {problem}", markup=False, highlight=False)
    else:
        err_console.print("[bold red]error:[/] ", end="")
        err_console.print(str(error), markup=False, highlight=False)


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
            err_console.print("[yellow]interrupted[/]: finished runs are kept; run the same command to go on")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except Exception as error:  # a bug or a broken environment: one line, exit 1
            if debug():
                raise
            err_console.print(f"[bold red]error:[/] {type(error).__name__}: {error}", markup=True, highlight=False)
            err_console.print("(set LOSSZOO_DEBUG=1 for the traceback)", style="dim")
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=_Group,
    name="losszoo",
    help="A loss-function zoo for PyTorch: train recipes, compare losses, browse the registry.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("train")(train.train)
app.command("compare")(compare.compare)
app.command("list")(listing.list_command)
app.command("show")(show.show)
app.command("check")(check.check)
app.command("landscape")(landscape.landscape)


def main() -> None:
    sys.exit(app(prog_name="losszoo"))
