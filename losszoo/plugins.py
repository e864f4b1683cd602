"""User plugins: files or modules that register losses, metrics, datasets or
models with the public decorators, and installed packages that offer them
through the entry-point group ``losszoo.plugins``.

Each plugin is imported once per process, keyed by what it is (a file's
resolved path, a module's name, an entry point's target), and a plugin that
fails half-way takes back the names it had registered, so a fixed file loads
cleanly in the same notebook.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from losszoo.errors import LosszooError
from losszoo.registry import PLUGIN_ORIGIN, REGISTRIES, Entry

_PACKAGE_DIR = str(Path(__file__).resolve().parent)

_loaded: dict[str, object] = {}


def _trimmed_traceback(error: BaseException, file: Path | None) -> str:
    """The error and where in the user's own code it happened, not in losszoo's import machinery."""
    if isinstance(error, SyntaxError) and error.filename:
        return f"SyntaxError: {error.msg} (at {error.filename}:{error.lineno})"
    frames = traceback.extract_tb(error.__traceback__)
    if file is not None:
        frames = [f for f in frames if Path(f.filename).resolve() == file.resolve()] or frames[-1:]
    else:
        frames = [f for f in frames if "importlib" not in f.filename and not f.filename.startswith(_PACKAGE_DIR)
                  ] or frames[-1:]
    where = "; ".join(f"{f.filename}:{f.lineno}" for f in frames[-2:])
    return f"{type(error).__name__}: {error} (at {where})"


def _import_once(key: str, what: str, origin: str, importer: Callable[[], object], file: Path | None = None) -> None:
    """Run ``importer`` once per ``key`` with entries marked ``origin``; on failure, undo its registrations."""
    if key in _loaded:
        return
    before = {kind: set(registry.names()) for kind, registry in REGISTRIES.items()}
    token = PLUGIN_ORIGIN.set(origin)
    try:
        _loaded[key] = importer()
    except BaseException as error:
        for kind, registry in REGISTRIES.items():
            for name in set(registry.names()) - before[kind]:
                registry.remove(name)
        if isinstance(error, LosszooError):
            raise LosszooError(f"plugin {what}: {error}") from None
        if isinstance(error, ModuleNotFoundError) and file is None and error.name and what.startswith(error.name):
            raise LosszooError(f"plugin {what}: no such module or file (a file must end in .py)") from None
        if isinstance(error, Exception):
            raise LosszooError(f"plugin {what} failed to import: {_trimmed_traceback(error, file)}") from None
        if isinstance(error, SystemExit):  # sys.exit() at import: a plugin must not end losszoo
            raise LosszooError(f"plugin {what} called sys.exit({error.code!r}) while being imported; "
                               "a plugin module should only define and register") from None
        raise
    finally:
        PLUGIN_ORIGIN.reset(token)


def load_plugin(spec: str, base_dir: Path | None = None) -> None:
    """Import one plugin: a ``.py`` file (relative to ``base_dir``) or a module name."""
    if not spec.endswith(".py"):
        _import_once(f"module {spec}", spec, f"module {spec}", lambda: importlib.import_module(spec))
        return
    file = Path(spec) if Path(spec).is_absolute() or base_dir is None else base_dir / spec
    if not file.is_file():
        raise LosszooError(f"plugin {spec}: no such file ({file})")
    file = file.resolve()
    name = f"losszoo_plugin_{file.stem}_{hashlib.sha1(str(file).encode()).hexdigest()[:12]}"  # same in every process

    def execute() -> object:
        module_spec = importlib.util.spec_from_file_location(name, file)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return module

    _import_once(f"file {file}", spec, f"file {file.name}", execute, file)


def load_entry_points() -> None:
    """Import every plugin that installed packages offer in the group ``losszoo.plugins``."""
    from importlib.metadata import entry_points

    for point in entry_points(group="losszoo.plugins"):
        origin = f"package {point.dist.name if point.dist else point.value}"
        _import_once(f"entry point {point.value}", f"{point.value} (entry point {point.name!r})", origin, point.load)


def source_hash(entry: Entry) -> str | None:
    """The sha256 of the file that defines a plugin's entry (None for built-ins): part of the identity of
    every run that uses it, so an edited plugin means new runs. Helper modules the file imports are not
    followed."""
    if entry.origin == "built-in":
        return None
    try:
        file = inspect.getsourcefile(entry.load())
    except (TypeError, OSError):
        file = None
    if file is None or not os.path.isfile(file):
        return None
    stat = os.stat(file)
    key = (file, stat.st_mtime_ns, stat.st_size)
    if key not in _hashes:
        with open(file, "rb") as handle:
            _hashes[key] = hashlib.sha256(handle.read()).hexdigest()
    return _hashes[key]


_hashes: dict[tuple[str, int, int], str] = {}


def load_plugins(specs: list[str], base_dir: Path | None = None) -> None:
    if not isinstance(specs, list) or not all(isinstance(s, str) for s in specs):
        raise LosszooError("must be a list of .py files or module names")
    for spec in specs:
        load_plugin(spec, base_dir)
