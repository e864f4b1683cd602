"""User plugins: files or modules that register losses, metrics, datasets or
models with the public decorators, and installed packages that offer them
through the entry-point group ``losszoo.plugins``."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from pathlib import Path

from losszoo.errors import LosszooError
from losszoo.registry import PLUGIN_ORIGIN

_loaded: dict[str, object] = {}


def _trimmed_traceback(error: BaseException, file: Path | None) -> str:
    """The failing frames of the user's own code, not losszoo's import machinery."""
    frames = traceback.extract_tb(error.__traceback__)
    if file is not None:
        frames = [f for f in frames if Path(f.filename).resolve() == file.resolve()] or frames[-1:]
    else:
        frames = [f for f in frames if "importlib" not in f.filename and "losszoo" not in f.filename] or frames[-1:]
    where = "; ".join(f"{f.filename}:{f.lineno}" for f in frames[-2:])
    return f"{type(error).__name__}: {error} (at {where})"


def load_plugin(spec: str, base_dir: Path | None = None) -> None:
    """Import one plugin: a ``.py`` file (relative to ``base_dir``) or a module name."""
    if spec in _loaded:
        return
    if spec.endswith(".py"):
        file = Path(spec) if Path(spec).is_absolute() or base_dir is None else base_dir / spec
        if not file.is_file():
            raise LosszooError(f"plugin {spec}: no such file ({file})")
        name = f"losszoo_plugin_{file.stem}_{abs(hash(str(file.resolve())))}"
        module_spec = importlib.util.spec_from_file_location(name, file)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        token = PLUGIN_ORIGIN.set(f"file {file.name}")
        try:
            module_spec.loader.exec_module(module)
        except LosszooError as error:
            sys.modules.pop(name, None)
            raise LosszooError(f"plugin {spec}: {error}") from None
        except Exception as error:
            sys.modules.pop(name, None)
            raise LosszooError(f"plugin {spec} failed to import: {_trimmed_traceback(error, file)}") from None
        finally:
            PLUGIN_ORIGIN.reset(token)
    else:
        token = PLUGIN_ORIGIN.set(f"module {spec}")
        try:
            module = importlib.import_module(spec)
        except ModuleNotFoundError as error:
            if error.name and spec.startswith(error.name):
                raise LosszooError(f"plugin {spec}: no such module or file (a file must end in .py)") from None
            raise LosszooError(f"plugin {spec} failed to import: {_trimmed_traceback(error, None)}") from None
        except LosszooError as error:
            raise LosszooError(f"plugin {spec}: {error}") from None
        except Exception as error:
            raise LosszooError(f"plugin {spec} failed to import: {_trimmed_traceback(error, None)}") from None
        finally:
            PLUGIN_ORIGIN.reset(token)
    _loaded[spec] = module


def load_entry_points() -> None:
    """Import every plugin that installed packages offer in the group ``losszoo.plugins``."""
    from importlib.metadata import entry_points

    for point in entry_points(group="losszoo.plugins"):
        if point.value in _loaded:
            continue
        token = PLUGIN_ORIGIN.set(f"package {point.dist.name if point.dist else point.value}")
        try:
            point.load()
        except LosszooError as error:
            raise LosszooError(f"plugin {point.value} (entry point {point.name!r}): {error}") from None
        except Exception as error:
            raise LosszooError(
                f"plugin {point.value} (entry point {point.name!r}) failed to import: "
                f"{_trimmed_traceback(error, None)}"
            ) from None
        finally:
            PLUGIN_ORIGIN.reset(token)
        _loaded[point.value] = point


def load_plugins(specs: list[str], base_dir: Path | None = None) -> None:
    if not isinstance(specs, list) or not all(isinstance(s, str) for s in specs):
        raise LosszooError("must be a list of .py files or module names")
    for spec in specs:
        load_plugin(spec, base_dir)
