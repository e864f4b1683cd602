"""What every renderer shows of a comparison: the terminal table at 120, 80
and 60 columns (numbers, spreads and rank markers whole, no line too wide),
in process and in a real terminal (tmux); CommonMark parsed by markdown-it-py
with the markers as literal text; the fields of csv and json."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.console import Console
from test_compare import result
from test_compare_contract import store

from losszoo.comparison.render import marker, number
from losszoo.comparison.render.terminal import Drawn, render_tables
from losszoo.comparison.render.text import to_csv, to_json, to_markdown
from losszoo.comparison.table import compare_results

#: The README's digits-margin comparison, made up: 4 losses, 4 metrics, 3 seeds; per metric the seed-1 value.
MARGIN = {
    "cross_entropy": {"accuracy": 0.9611, "macro_f1": 0.9603, "nll": 0.1412, "ece": 0.0123},
    "focal(gamma=2)": {"accuracy": 0.9574, "macro_f1": 0.9569, "nll": 0.1530, "ece": 0.0461},
    "cosface(m=0.35,s=16)": {"accuracy": 0.9648, "macro_f1": 0.9645, "nll": 0.2231, "ece": 0.0712},
    "arcface(m=0.3,s=16)": {"accuracy": 0.9630, "macro_f1": 0.9627, "nll": 0.2113, "ece": 0.0654},
}
WIDTHS = (120, 80, 60)


def margin_results() -> list[dict]:
    out = []
    for i, (label, base) in enumerate(MARGIN.items()):
        for seed in range(3):
            jitter = (seed - 1) * 0.003 * (1 + i % 2)
            values = {m: round(v + jitter * (0.2 if m == "ece" else 1), 6) for m, v in base.items()}
            out.append(result(label, seed, values, dataset="digits", experiment="digits-margin", position=i,
                              model_params={"hidden": [128], "embedding_dim": 32},
                              train={"epochs": 20, "batch_size": 64}))
    return out


def rendered(comparison, width: int, with_ci: bool = False) -> str:
    console = Console(width=width, record=True, file=io.StringIO(), markup=False, emoji=False, highlight=False)
    for part in render_tables(comparison, width, "digits-margin", None, with_ci):
        console.print(part)
    return console.export_text()


def expected_pieces(comparison, with_ci: bool = False) -> list[str]:
    """Every mean with its marker, every ± std (and interval): each must appear whole, on one line."""
    pieces = []
    for row in comparison.rows:
        for cell in row.cells.values():
            pieces.append(f"{number(cell.mean)} {marker(cell)}".strip())
            if cell.testable:
                spread = f"± {number(cell.std)}"
                pieces.append(spread + (f" [{number(cell.ci[0])}, {number(cell.ci[1])}]" if with_ci else ""))
    return pieces


def assert_whole(text: str, comparison, width: int, with_ci: bool = False, labels: bool = True) -> None:
    assert "…" not in text
    lines = text.splitlines()
    too_wide = [line for line in lines if cell_len(line) > width]
    assert not too_wide, too_wide
    for piece in expected_pieces(comparison, with_ci):
        assert any(piece in line for line in lines), (piece, text)
    for row in comparison.rows if labels else ():  # the labels too, where they can fit
        assert any(row.label["label"] in line for line in lines), row.label


def test_the_margin_comparison_has_every_marker():
    comparison = compare_results(margin_results())
    markers = {marker(c) for r in comparison.rows for c in r.cells.values()}
    assert markers == {"*", "+", ""}, markers


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("with_ci", [False, True])
def test_the_table_fits_every_width_with_numbers_whole(width, with_ci):
    comparison = compare_results(margin_results())
    assert_whole(rendered(comparison, width, with_ci), comparison, width, with_ci)


def test_wide_terminals_get_one_table_and_narrow_ones_several():
    comparison = compare_results(margin_results())
    assert rendered(comparison, 120).count("┏") == 1
    assert "± 0.0030 │" in rendered(comparison, 120)  # mean and std on one line
    narrow = rendered(comparison, 60)
    assert narrow.count("┏") == 2 and "(1/2)" in narrow and "(2/2)" in narrow
    for text in (narrow, rendered(comparison, 80)):  # labels are never wrapped while a column fits beside them
        assert "cosface(m=0.35,s=16)" in text


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("with_ci", [False, True])
def test_failed_runs_single_runs_and_long_labels_stay_whole(width, with_ci):
    results = margin_results() + [result("cross_entropy", 3, MARGIN["cross_entropy"], dataset="digits",
                                         experiment="digits-margin",
                                         status="diverged", model_params={"hidden": [128], "embedding_dim": 32},
                                         train={"epochs": 20, "batch_size": 64})]
    results += [result("adaface(m=0.4,h=0.333,s=64)", 0, {"accuracy": 0.97, "macro_f1": 0.969, "nll": 0.1,
                                                          "ece": 0.01},
                       dataset="digits", experiment="digits-margin", position=4,
                       model_params={"hidden": [128], "embedding_dim": 32}, train={"epochs": 20, "batch_size": 64})]
    comparison = compare_results(results)
    text = rendered(comparison, width, with_ci)
    assert "3 (+1 diverged)" in text or "(+1 diverged)" in text  # beside the count, or under it when stacked
    assert "0.9700 *?" in text  # the best mean, a single run
    assert_whole(text, comparison, width, with_ci, labels=width > 60 or not with_ci)  # 27-letter label + CI
    tables = [line for line in text.splitlines() if line.startswith(("┏", "┃", "│", "└"))]
    assert all(line.rstrip().endswith(("┓", "┃", "│", "┘")) for line in tables), text  # no table cut short


def draw(comparison, width: int, with_ci: bool, fast: bool) -> tuple[str, str]:
    console = Console(width=width, record=True, file=io.StringIO(), markup=False, emoji=False, highlight=False,
                      force_terminal=True, color_system="truecolor")
    for part in render_tables(comparison, width, "digits-margin", None, with_ci):
        console.print(part if fast or not isinstance(part, Drawn) else part.table)
    return console.export_text(), console.export_text(styles=True)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("with_ci", [False, True])
def test_tables_drawn_directly_equal_richs_own_drawing(width, with_ci):
    results = margin_results() + [result("cross_entropy", 3, MARGIN["cross_entropy"], dataset="digits",
                                         experiment="digits-margin", status="diverged",
                                         model_params={"hidden": [128], "embedding_dim": 32},
                                         train={"epochs": 20, "batch_size": 64})]
    comparison = compare_results(results)
    assert draw(comparison, width, with_ci, fast=True) == draw(comparison, width, with_ci, fast=False)
    if width == 120:
        assert any(isinstance(p, Drawn) for p in render_tables(comparison, width, "", None, with_ci))


# --- a real terminal ---------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_compare_in_a_60_column_tmux_terminal(tmp_path):
    store(tmp_path / "runs", margin_results())
    exe = Path(sys.executable).with_name("losszoo")
    socket = f"losszoo-test-{os.getpid()}"  # a private tmux server, started and ended here
    command = f"{exe} compare --runs-dir {tmp_path / 'runs'}; tmux -L {socket} wait-for -S done; sleep 60"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TMUX")}
    subprocess.run(["tmux", "-L", socket, "new-session", "-d", "-x", "60", "-y", "120", command], check=True,
                   env=env)
    try:
        subprocess.run(["tmux", "-L", socket, "wait-for", "done"], timeout=120, check=True)
        time.sleep(0.2)
        # -J joins the lines the terminal wrapped: a line wider than the terminal comes back whole
        text = subprocess.run(["tmux", "-L", socket, "capture-pane", "-p", "-J", "-S", "-"], check=True,
                              capture_output=True, text=True).stdout
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], check=False)
    comparison = compare_results(margin_results())
    assert "(1/2)" in text, text
    assert_whole(text.rstrip("\n"), comparison, 60)


# --- CommonMark --------------------------------------------------------------------------------------------


def markdown_cells(text: str):
    """The table's cells as (plain text, tokens) after a CommonMark parse with GFM tables."""
    markdown_it = pytest.importorskip("markdown_it")
    tokens = markdown_it.MarkdownIt("commonmark").enable("table").parse(text)
    rows, row = [], None
    for i, token in enumerate(tokens):
        if token.type == "tr_open":
            row = []
        elif token.type in ("th_open", "td_open"):
            inline = tokens[i + 1]
            plain = "".join(c.content for c in inline.children if c.type in ("text", "code_inline"))
            row.append((plain, [c.type for c in inline.children]))
        elif token.type == "tr_close":
            rows.append(row)
    return tokens, rows


def markdown_comparison():
    """Every marker, and user text full of Markdown: underscores, brackets, a star and a pipe in a file name."""
    results = []
    for i, (label, values) in enumerate({"cross_entropy": [0.90, 0.92, 0.94], "focal(g=2)": [0.905, 0.915, 0.951],
                                         "mse_on_logits": [0.70, 0.71, 0.72]}.items()):
        results += [result(label, s, v, dataset="csv", dataset_params={"path": "/data/my*data|v2.csv"},
                           model_params={"hidden": [32]}, position=i) for s, v in enumerate(values)]
    results.append(result("arcface(m=0.5)", 0, 0.8, dataset="csv", dataset_params={"path": "/data/my*data|v2.csv"},
                          model_params={"hidden": [32]}, position=3))
    return compare_results(results)


def test_markdown_is_a_commonmark_table_with_literal_markers():
    comparison = markdown_comparison()
    tokens, rows = markdown_cells(to_markdown(comparison))
    assert [t.type for t in tokens].count("table_open") == 1
    assert not any(t.type == "em_open" for t in tokens) and not any(
        c.type == "em_open" for t in tokens for c in (t.children or []))  # no stray * emphasis anywhere
    header, *body = rows
    assert [plain for plain, _ in header] == ["dataset", "label", "accuracy", "n"]
    assert all(len(row) == len(header) for row in body)  # no pipe in user text broke a row
    cells = {row[1][0]: row for row in body}
    assert set(cells) == {"cross_entropy", "focal(g=2)", "mse_on_logits", "arcface(m=0.5)"}
    assert {row[0][0] for row in body} == {"csv(my*data|v2.csv)"}  # the file's name, literally
    by_label = {r.label["label"]: r.cells["test.accuracy"] for r in comparison.rows}
    for label, row in cells.items():
        cell = by_label[label]
        plain, kinds = row[2]
        assert plain == " ".join(p for p in (f"{number(cell.mean)} {marker(cell)}".strip(),
                                             f"± {number(cell.std)}" if cell.testable else "") if p)
        assert ("strong_open" in kinds) == (cell.rank1 and cell.testable)  # bold is only an addition
    assert cells["focal(g=2)"][2][0].startswith("0.9237 * ± ")
    assert cells["cross_entropy"][2][0].startswith("0.9200 + ± ")
    assert cells["mse_on_logits"][2][0] == "0.7100 ± 0.0100"
    assert cells["arcface(m=0.5)"][2][0] == "0.8000 ?"


def test_markdown_legend_and_warnings_render_literally():
    markdown_it = pytest.importorskip("markdown_it")
    comparison = markdown_comparison()
    html = markdown_it.MarkdownIt("commonmark").enable("table").render(to_markdown(comparison))
    assert "<em>" not in html
    assert "* best mean of its block" in html and "+ rank 1" in html and "? a single run" in html
    assert "<blockquote>" in html and "fewer than 3 seeds" in html


def test_markdown_of_an_across_dataset_comparison_parses():
    from test_compare_contract import across_results

    markdown_it = pytest.importorskip("markdown_it")
    text = to_markdown(compare_results(across_results(), baseline="c"))
    tokens = markdown_it.MarkdownIt("commonmark").enable("table").parse(text)
    assert [t.type for t in tokens].count("table_open") == 2  # the rows, and the datasets' summary
    html = markdown_it.MarkdownIt("commonmark").enable("table").render(text)
    assert "IQM accuracy [95% CI]" in html and "P(better than c) [95% CI]" in html and "<a " not in html


# --- csv and json ------------------------------------------------------------------------------------------

FIELDS = ("mean", "std", "n", "ci95_low", "ci95_high", "best", "in_rank1_group", "p_worse", "testable")


def test_csv_and_json_carry_every_field_of_the_verdict():
    comparison = markdown_comparison()
    records = json.loads(to_json(comparison))
    assert len(records["legend"]) >= 3 and records["warnings"]
    rows = list(csv.DictReader(io.StringIO(to_csv(comparison))))
    assert len(rows) == len(records["rows"]) == 4
    for record, row in zip(records["rows"], rows, strict=True):
        for field in FIELDS:
            assert field in record and field in row
        cell = next(r for r in comparison.rows if r.label["label"] == record["label"]).cells["test.accuracy"]
        assert (record["best"], record["in_rank1_group"], record["testable"]) == (cell.best, cell.rank1,
                                                                                 cell.testable)
        assert row["best"] == str(cell.best) and row["testable"] == str(cell.testable)
        if cell.testable:
            assert (record["ci95_low"], record["ci95_high"]) == cell.ci
            assert float(row["ci95_low"]) == cell.ci[0]
