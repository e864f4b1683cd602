"""A user's table, csv or parquet, as one code path: read the file into named
columns, then choose the features, one-hot encode the categorical ones and map
the target to labels or values.

Every problem is a :class:`DataError` that names the place in the file
(``table.csv:7`` for a csv line, ``table.parquet row 6`` for a parquet row) and
the recipe key to fix (``target``, ``features``, ``drop``, ``categorical``,
``task``, or ``path`` when the file itself must change).
"""

from __future__ import annotations

import codecs
import difflib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from losszoo.data.sources import Source
from losszoo.errors import DataError


@dataclass
class Table:
    file: Path
    names: list[str]
    columns: list[Sequence[Any]]  # per column: cells (str, number, bool or None), or a float64 array
    lines: list[int] | None = None  # csv: the file line of each row; parquet: None

    def __len__(self) -> int:
        return len(self.columns[0]) if self.columns else 0

    def where(self, row: int) -> str:
        return f"{self.file}:{self.lines[row]}" if self.lines is not None else f"{self.file} row {row + 1}"


# --- reading -------------------------------------------------------------------------------------

_NOT_CSV = {  # what the first bytes say a "csv" really is
    b"PK\x03\x04": "a zip archive (an Excel .xlsx?); export it as csv",
    b"PAR1": "a parquet file; use `name: parquet`",
    b"\x93NUMPY": "a numpy array; save it with np.savez and use `name: npz`",
}


def _decode(file: Path, data: bytes) -> str:
    for magic, what in _NOT_CSV.items():
        if data.startswith(magic):
            raise DataError(f"{file}: not a csv file but {what}")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(f"{file}: the file is UTF-16 text; save it as UTF-8 (in Excel: CSV UTF-8)")
    try:
        return data.decode("utf-8-sig")  # a UTF-8 byte-order mark (Excel writes one) is read, not a column name
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise DataError(
            f"{file}:{line}: not UTF-8 text: byte 0x{data[error.start]:02x} at column {column} "
            f"(byte {error.start} of the file); the file is probably Latin-1 or Windows-1252. Save it as UTF-8, "
            "e.g. Path(p).write_text(Path(p).read_text(encoding='latin-1'), encoding='utf-8')"
        ) from None


def read_csv(file: Path) -> Table:
    """A csv file as named columns of strings, with the line of each row."""
    import csv

    data = file.read_bytes()
    text = _decode(file, data)
    if "\0" in text:
        raise DataError(f"{file}: holds NUL bytes; it is a binary file, not csv text")
    first = text.split("\n", 1)[0]
    # A csv saved with a European locale uses ';'; a tab-separated export uses tabs.
    delimiter = next((d for d in (",", ";", "\t") if d in first), ",")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows, lines = [], []
    try:
        for row in reader:
            if row:  # blank lines separate nothing
                rows.append(row)
                lines.append(reader.line_num)
    except csv.Error as error:
        raise DataError(f"{file}:{reader.line_num}: not valid csv ({error})") from None
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise DataError(f"{file}: the file is empty; it needs a header line and rows of values")
    header = [name.strip() for name in rows[0]]
    _unique_names(file, header)
    body, lines = rows[1:], lines[1:]
    if not body:
        raise DataError(f"{file}: the file has a header but no rows")
    for row, line in zip(body, lines, strict=True):
        if len(row) != len(header):
            raise DataError(f"{file}:{line}: {len(row)} values for {len(header)} columns")
    return Table(file, header, [list(column) for column in zip(*body, strict=True)], lines)


def read_parquet(file: Path) -> Table:
    """A parquet file as named columns: int64 or float64 arrays where the type is numeric and nothing is
    null."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError("reading parquet files needs pyarrow: pip install 'losszoo[parquet]'", "name") from None
    try:
        table = pq.read_table(file)
    except (pa.ArrowException, OSError) as error:
        raise DataError(f"{file}: not a readable parquet file ({error})") from None
    names = [str(name) for name in table.column_names]
    _unique_names(file, names)
    if table.num_rows == 0:
        raise DataError(f"{file}: the file has columns but no rows")
    columns: list[Sequence[Any]] = []
    for column in table.columns:
        kind = column.type
        numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
        if numeric and column.null_count == 0:  # integers stay exact (class labels past 2**53), the rest float64
            columns.append(column.to_numpy().astype(np.int64 if pa.types.is_integer(kind) else np.float64))
        else:
            columns.append(column.to_pylist())
    return Table(file, names, columns)


def _unique_names(file: Path, names: list[str]) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise DataError(f"{file}: two columns are named {name!r}; column names must be unique")
        seen.add(name)


# --- choosing columns ----------------------------------------------------------------------------


def _column(table: Table, name: str, key: str) -> int:
    if name not in table.names:
        close = difflib.get_close_matches(name, table.names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DataError(f"{table.file}: no column {name!r}{hint} (columns: {', '.join(table.names)})", key)
    return table.names.index(name)


def _feature_columns(table: Table, target: str, features: list[str], drop: list[str],
                     categorical: list[str]) -> list[str]:
    for key, listed in (("features", features), ("drop", drop), ("categorical", categorical)):
        for name in listed:
            _column(table, name, key)
        if len(set(listed)) != len(listed):
            raise DataError(f"{table.file}: `{key}:` names a column twice", key)
    if features and drop:
        raise DataError("give `features:` (the columns to use) or `drop:` (the columns to leave out), not both",
                        "drop")
    if target in features:
        raise DataError(f"the target {target!r} is also listed in `features:`; a column cannot predict itself",
                        "features")
    if target in categorical:
        raise DataError(f"the target {target!r} is not a feature; remove it from `categorical:` (class labels "
                        "may be text as they are)", "categorical")
    chosen = list(features) if features else [n for n in table.names if n != target and n not in drop]
    for name in categorical:
        if name not in chosen:
            why = "not in `features:`" if features else "in `drop:`"
            raise DataError(f"column {name!r} is listed in `categorical:` but {why}", "categorical")
    if not chosen:
        raise DataError(f"{table.file}: has no feature columns besides the target {target!r}",
                        "drop" if drop else "path")
    return chosen


# --- cells to numbers ----------------------------------------------------------------------------


def _missing(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _as_number(cell: Any) -> float | None:
    if isinstance(cell, (bool, int, float, np.number)):
        return float(cell)
    if isinstance(cell, str):
        try:
            return float(cell)
        except ValueError:
            return None
    return None


def _numbers(table: Table, index: int, what: str) -> np.ndarray:
    """A column as float64, or the DataError that names the first bad cell. ``what`` is
    ``column 'b'`` or ``target 'y'``."""
    column = table.columns[index]
    if isinstance(column, np.ndarray):
        values = column.astype(np.float64, copy=False)
    else:
        try:
            values = np.array(column, dtype=np.float64)  # the fast path; the loop below only explains failures
        except (ValueError, TypeError):
            values = None
    if values is not None and np.isfinite(values).all():
        return values
    for row, cell in enumerate(column):
        if _missing(cell):
            raise DataError(f"{table.where(row)}: {what} is missing a value; fill or drop the row")
        number = _as_number(cell)
        if number is None:
            raise _not_a_number(table, index, row, cell, what)
        if not np.isfinite(number):
            raise DataError(f"{table.where(row)}: {what} holds {cell!r}; clean inf and nan values first")
    raise AssertionError("a column failed to convert yet every cell is a finite number")  # pragma: no cover


def _not_a_number(table: Table, index: int, row: int, cell: Any, what: str) -> DataError:
    name = table.names[index]
    if what.startswith("target"):
        return DataError(f"{table.where(row)}: {what} holds {cell!r}, not a number; for class labels use "
                         "task: classification", "task")
    column = table.columns[index]
    if not isinstance(cell, (str, type(None))):
        return DataError(f"{table.file}: {what} holds {type(cell).__name__} values; losszoo reads numbers and "
                         f"text: list {name!r} in `drop:`", "drop")
    if not any(_as_number(c) is not None for c in column if not _missing(c)):
        examples = ", ".join(repr(c) for c in sorted({str(c).strip() for c in column if not _missing(c)})[:3])
        return DataError(f"{table.file}: {what} holds text ({examples}, ...), not numbers; list {name!r} in "
                         "`categorical:` to one-hot encode it, or in `drop:` to leave it out", "categorical")
    return DataError(f"{table.where(row)}: {what} holds {cell!r}, not a number; fix the cell, or list "
                     f"{name!r} in `categorical:` or `drop:`")


def _texts(table: Table, index: int, what: str) -> np.ndarray:
    """A column as stripped strings (numbers as ``1.5``), or the DataError naming the first empty cell."""
    column = table.columns[index]
    if isinstance(column, np.ndarray) or not all(isinstance(c, str) for c in column):
        column = ["" if c is None else f"{c:g}" if isinstance(c, float) else str(c) for c in column]
    texts = np.char.strip(np.asarray(column, dtype=str))
    empty = np.flatnonzero(texts == "")
    if len(empty):
        raise DataError(f"{table.where(int(empty[0]))}: {what} is missing a value; fill or drop the row")
    return texts


def class_name(label: float) -> str:
    """A numeric class label as the user wrote it: 1234567, not 1.23457e+06 (whole numbers are exact as
    floats up to 2**53)."""
    return str(int(label)) if float(label).is_integer() and abs(label) < 2**53 else f"{label:g}"


def one_hot(texts: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(N, K) indicator columns of the K distinct texts, in sorted order."""
    categories, codes = np.unique(texts, return_inverse=True)
    return np.eye(len(categories), dtype=np.float64)[codes.ravel()], [str(c) for c in categories]


# --- the source ----------------------------------------------------------------------------------


def to_source(table: Table, target: str, task: str, features: Sequence[str] = (), drop: Sequence[str] = (),
              categorical: Sequence[str] = ()) -> Source:
    """The table as a source: the chosen features (categorical ones one-hot) and the target column."""
    if not target:
        raise DataError(f"{table.file}: say which column to predict with `target:` "
                        f"(columns: {', '.join(table.names)})", "target")
    target_index = _column(table, target, "target")
    chosen = _feature_columns(table, target, list(features), list(drop), list(categorical))
    blocks = []
    for name in chosen:
        index = table.names.index(name)
        if name in categorical:
            blocks.append(one_hot(_texts(table, index, f"column {name!r}"))[0])
        else:
            blocks.append(_numbers(table, index, f"column {name!r}")[:, None])
    x = np.concatenate(blocks, axis=1).astype(np.float32)
    what = f"target {target!r}"
    if task == "regression":
        return Source(x, _numbers(table, target_index, what).astype(np.float32), "regression")
    column = table.columns[target_index]
    if isinstance(column, np.ndarray) and column.dtype.kind in "iu":  # parquet integers, exactly (not via float)
        classes, y = np.unique(column, return_inverse=True)
        names = [str(c) for c in classes]
    elif isinstance(column, np.ndarray) or all(_as_number(c) is not None for c in column if not _missing(c)):
        numbers = _numbers(table, target_index, what)
        if not np.all(numbers == np.round(numbers)):
            row = int(np.flatnonzero(numbers != np.round(numbers))[0])
            raise DataError(f"{table.where(row)}: {what} holds {numbers[row]:g}, not a class label; for numbers "
                            "to predict use task: regression", "task")
        classes, y = np.unique(numbers, return_inverse=True)
        names = [class_name(c) for c in classes]
    else:  # text labels: classes in sorted order
        labels, y = np.unique(_texts(table, target_index, what), return_inverse=True)
        names = [str(c) for c in labels]
    if len(names) < 2:
        raise DataError(f"{table.file}: {what} holds a single class ({names[0]!r}); classification needs at least "
                        "two", "target")
    return Source(x, y.ravel().astype(np.int64), "classification", class_names=names)
