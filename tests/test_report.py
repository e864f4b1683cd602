"""losszoo report: one self-contained HTML file, opened in a real headless Chromium.

The browser is Debian's chromium driven by Playwright (``.ci/run`` installs both);
where they are missing the browser test is skipped, unless
``LOSSZOO_REQUIRE_BROWSER=1`` (set by CI) makes that a failure.
"""

import os
import shutil
import struct
import zlib

import pytest
from typer.testing import CliRunner

import losszoo
from losszoo.cli.main import app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    runs = root / "runs"
    losszoo.train({"experiment": "shared", "datasets": ["iris", "wine"], "losses": ["cross_entropy", "focal"],
                   "seeds": [0, 1], "model": {"name": "mlp", "hidden": [8]}, "train": {"epochs": 2}},
                  runs_dir=runs)
    out = root / "report.html"
    outcome = CliRunner().invoke(app, ["report", "shared", "-o", str(out), "--runs-dir", str(runs)])
    assert outcome.exit_code == 0, outcome.output
    return out


def test_the_report_is_one_file_with_every_section_and_no_link_out(report):
    html = report.read_text()
    for section in ("Comparison", "Learning curves", "Recipes", "Reproduce", "Loss landscape", "Provenance"):
        assert f">{section}" in html
    assert "<script" not in html and "http://" not in html and "https://" not in html  # opens offline
    assert html.count('src="data:image/png;base64,') >= 2  # the comparison plot and the CD diagram
    assert "losszoo compare shared" in html and "losszoo report shared" in html
    assert html.count("<summary>config</summary>") == 8  # every run's provenance


def test_user_text_is_escaped(tmp_path):
    runs = tmp_path / "runs"
    recipe = tmp_path / "esc.yaml"
    recipe.write_text("# <script>alert(1)</script>\ndataset: iris\nloss: cross_entropy\ntrain: {epochs: 1}\n")
    losszoo.train(recipe, runs_dir=runs)
    out = tmp_path / "r.html"
    assert CliRunner().invoke(app, ["report", "esc", "-o", str(out), "--runs-dir", str(runs)]).exit_code == 0
    assert "<script>" not in out.read_text() and "&lt;script&gt;" in out.read_text()


def test_the_recipe_and_the_command_that_trained_it_are_kept_with_the_runs(tmp_path):
    runs, recipe = tmp_path / "runs", tmp_path / "kept.yaml"
    recipe.write_text("# why: a quick look\ndataset: iris\nlosses: [cross_entropy]\ntrain: {epochs: 3}\n")
    losszoo.train(recipe, ["train.epochs=1"], runs_dir=runs)
    out = tmp_path / "r.html"
    outcome = CliRunner().invoke(app, ["report", "kept", "-o", str(out), "--runs-dir", str(runs)])
    assert outcome.exit_code == 0 and "skipped" not in outcome.output  # the kept recipe is no run folder
    html = out.read_text()
    assert "# why: a quick look" in html  # the recipe as written, comments included
    assert f"losszoo train {recipe} --set train.epochs=1 --runs-dir {runs}" in html


@pytest.mark.parametrize("name", ["report.txt", "missing-folder/x/", "."])
def test_a_bad_output_path_is_refused_before_any_work(tmp_path, name):
    outcome = CliRunner().invoke(app, ["report", "nosuch", "-o", str(tmp_path / name), "--runs-dir", str(tmp_path)])
    assert outcome.exit_code == 2 and "--output" in outcome.output and "Traceback" not in outcome.output


def _png_colours(data: bytes) -> int:
    """How many distinct pixel values a PNG screenshot holds (1 means blank)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    chunks, at = [], 8
    while at < len(data):
        length = struct.unpack(">I", data[at:at + 4])[0]
        kind = data[at + 4:at + 8]
        if kind == b"IDAT":
            chunks.append(data[at + 8:at + 8 + length])
        at += 12 + length
    raw = zlib.decompress(b"".join(chunks))
    return len(set(raw[i:i + 16] for i in range(0, min(len(raw), 400_000), 16)))


@pytest.mark.slow
def test_the_report_loads_in_headless_chromium(report):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if CHROMIUM is None or sync_playwright is None:
        if os.environ.get("LOSSZOO_REQUIRE_BROWSER"):
            pytest.fail("Debian's chromium and playwright are needed (see .ci/run)")
        pytest.skip("no chromium or playwright here")
    from losszoo.comparison.load import load

    rows = len(load(report.parent / "runs", ["shared"]).comparison.rows)
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 2000})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
        page.goto(report.as_uri())
        page.wait_for_load_state("load")
        assert page.locator("table.comparison tbody tr").count() == rows
        images = page.locator("img")
        assert images.count() >= 2
        for i in range(images.count()):
            assert images.nth(i).evaluate("img => img.complete && img.naturalWidth > 100"), f"image {i} did not load"
        shot = page.screenshot(full_page=True)
        browser.close()
    assert not errors, errors
    assert _png_colours(shot) > 50  # a rendered page, not a blank one
