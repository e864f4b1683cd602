"""Fill in the generalisation gap that `losszoo compare --correlate` reads.

losszoo's trainer computes `generalization_gap` (train minus test of the metric
that picks the epoch; the first metric with `select_by: last`) but, as of this
writing, result.json does not keep it, so --correlate finds no run with a gap.
This script adds the same figure, computed from the metrics result.json does
keep, to every completed run of the experiments named. It changes nothing else.

    python docs/claims/add_gap.py /tmp/claims-runs/claim6-flatness
"""

import json
import os
import sys
import tempfile
from pathlib import Path


def gap(result: dict) -> dict | None:
    config = result["config"]
    select = config.get("select_by", "last")
    name = config["metrics"][0] if select == "last" else select.rpartition(".")[2]
    train, test = result["metrics"].get("train", {}).get(name), result["metrics"].get("test", {}).get(name)
    return None if train is None or test is None else {"metric": name, "value": train - test}


for experiment in sys.argv[1:]:
    for path in sorted(Path(experiment).glob("*/result.json")):
        result = json.loads(path.read_text())
        if result.get("status") != "completed" or result.get("generalization_gap"):
            continue
        result["generalization_gap"] = gap(result)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as out:
            json.dump(result, out, indent=2)
        os.replace(tmp, path)
        print(f"{path.parent.name}: {result['generalization_gap']}")
