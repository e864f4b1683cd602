"""``losszoo report EXPERIMENT... -o report.html``: one self-contained HTML file to share.

It holds the recipe(s), the comparison tables with rank groups and confidence
intervals, the learning curves and bar charts that ``compare --plot`` draws
(and the critical-difference diagram across datasets), landscape figures
where runs have them, each run's provenance (config, seed, versions, device,
time) and the commands that reproduce it all. Images are embedded as PNG data,
the style sheet is inline and there is no script: the file opens anywhere, with
no network.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import shlex
import tempfile
from html import escape
from pathlib import Path
from typing import Any

from losszoo.comparison.load import Loaded
from losszoo.comparison.render.html import comparison_table

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: .3em .6em; vertical-align: top; }
th { background: #f4f4f4; } td.num, th.num { text-align: right; white-space: nowrap; }
td.best { background: #1b7837; color: white; font-weight: bold; } td.rank1 { background: #d9f0d3; font-weight: bold; }
.spread { font-size: .85em; } td.best .spread { color: #eee; }
.legend, .note { color: #555; font-size: .85em; } .warning { color: #8a5a00; }
pre { background: #f7f7f7; padding: .8em; overflow-x: auto; font-size: .85em; }
img { max-width: 100%; border: 1px solid #eee; }
details { margin: .3em 0; } summary { cursor: pointer; }
"""


def _png(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{escape(path.name)}" src="data:image/png;base64,{data}">'


def _plots(loaded: Loaded) -> list[str]:
    from losszoo.comparison.plot import plot_comparison, plot_critical_difference

    out = []
    with tempfile.TemporaryDirectory(prefix="losszoo-report-") as tmp:
        path = plot_comparison(loaded.comparison, loaded.root, Path(tmp) / "comparison.png")
        out.append(_png(path))
        for i, across in enumerate(loaded.comparison.across):
            out.append(_png(plot_critical_difference(across, Path(tmp) / f"cd-{i}.png")))
    return out


def _recipes(loaded: Loaded) -> str:
    from losszoo.training.store import saved_recipe

    parts = []
    for experiment in loaded.experiments:
        saved = saved_recipe(loaded.root, experiment)
        text = saved["text"] if saved else (
            "(no recipe kept with these runs: each run's resolved config is listed under Provenance)")
        where = f"from {saved['source']}" if saved else ""
        parts.append(f"<h3>{escape(experiment)}</h3><p>{escape(where)}</p><pre>{escape(text)}</pre>")
    return "\n".join(parts)


def _train_command(loaded: Loaded, experiment: str) -> str:
    """The command that trained ``experiment``, as ``losszoo train`` kept it (its recipe's path, --set)."""
    from losszoo.training.store import saved_recipe

    saved = saved_recipe(loaded.root, experiment)
    if saved is None or saved["source"] == "<recipe>":
        return f"losszoo train RECIPE.yaml --runs-dir {shlex.quote(str(loaded.root))}  # {experiment}'s recipe"
    sets = "".join(f" --set {shlex.quote(str(o))}" for o in saved.get("overrides") or [])
    return f"losszoo train {shlex.quote(saved['source'])}{sets} --runs-dir {shlex.quote(str(loaded.root))}"


def _landscape(loaded: Loaded) -> str:
    parts = []
    for result in _results(loaded):
        folder = loaded.root / str(result["experiment"]) / str(result["run_id"])
        summary = result.get("landscape")
        pictures = sorted(folder.glob("*.png")) if folder.is_dir() else []
        pictures = [p for p in pictures if p.name != "embeddings.png"]
        if not summary and not pictures:
            continue
        rows = "".join(f"<tr><td>{escape(str(k))}</td><td>{escape(json.dumps(v, default=str))}</td></tr>"
                       for k, v in (summary or {}).items())
        parts.append(f"<h3>{escape(str(result.get('label')))} seed {escape(str(result.get('seed')))} "
                     f"({escape(str(result['run_id']))})</h3><table>{rows}</table>"
                     + "".join(_png(p) for p in pictures))
    return "\n".join(parts) or "<p>No run of these experiments was measured with <code>losszoo landscape</code>.</p>"


def _results(loaded: Loaded) -> list[dict[str, Any]]:
    return [r for row in loaded.comparison.rows for r in row.results]


def _provenance(loaded: Loaded) -> str:
    head = ["run", "label", "seed", "status", "device", "seconds", "finished", "versions", "config"]
    rows = []
    for r in sorted(_results(loaded), key=lambda r: (str(r.get("experiment")), str(r.get("label")), r.get("seed"))):
        folder = loaded.root / str(r["experiment"]) / str(r["run_id"])
        try:
            finished = dt.datetime.fromtimestamp((folder / "result.json").stat().st_mtime).isoformat(timespec="seconds")
        except OSError:
            finished = "-"
        provenance = r.get("provenance") or {}
        versions = ", ".join(f"{k} {v}" for k, v in (r.get("versions") or {}).items())
        config = json.dumps(r.get("config") or {}, indent=2, default=str)
        cells = [r["run_id"], r.get("label"), r.get("seed"), r.get("status"), provenance.get("device", "-"),
                 r.get("train_seconds"), finished, versions]
        rows.append("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in cells)
                    + f"<td><details><summary>config</summary><pre>{escape(config)}</pre></details></td></tr>")
    return ("<table><thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def render_report(loaded: Loaded, title: str) -> str:
    import losszoo

    experiments = " ".join(loaded.experiments)
    commands = "\n".join([
        f"pip install losszoo=={losszoo.__version__}",
        *(_train_command(loaded, e) for e in loaded.experiments),
        f"losszoo compare {experiments} --ci --plot comparison.png",
        f"losszoo report {experiments} -o report.html",
    ])
    sections = [
        ("Comparison", comparison_table(loaded.comparison)),
        ("Learning curves and means", "\n".join(_plots(loaded))),
        ("Recipes", _recipes(loaded)),
        ("Reproduce", f"<pre>{escape(commands)}</pre>"),
        ("Loss landscape", _landscape(loaded)),
        ("Provenance", _provenance(loaded)),
    ]
    body = "\n".join(f'<section id="{escape(name.split()[0].lower())}"><h2>{escape(name)}</h2>{html}</section>'
                     for name, html in sections)
    made = dt.datetime.now().isoformat(timespec="seconds")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>"
            f'<p class="note">made by losszoo {escape(losszoo.__version__)} on {escape(made)} from '
            f"{escape(str(loaded.root))}</p>{body}</body></html>\n")


def write_report(loaded: Loaded, path: Path, title: str) -> Path:
    from losszoo.training.store import write_atomic

    write_atomic(path, render_report(loaded, title))
    return path
