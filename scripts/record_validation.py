"""Record what the shipped model does on its validation images, for tests/test_shipped_model.py.

    python scripts/record_validation.py MODEL.tflite DATA_ROOT OUT.json

Reads the validation paths stored in the model's own metadata source run (``split.json``),
scores each through the device classifier (the CLI's own path: decode, gate off, classify) and
writes the file names relative to DATA_ROOT with their probabilities. The test re-scores them
from ../shared/data and checks both the per-image probabilities and the validation metrics
stored in the model's contract, so a drift in preprocessing, runtime or model shows up.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from edge_app.classifier import Classifier
from edge_app.contract import read_metadata
from edge_app.decoding import decode_file


def main(model: str, data_root: str, out: str) -> None:
    metadata = read_metadata(model)
    run = Path(metadata["source"]["run"])
    validation = json.loads((run / "split.json").read_text())["validation"]
    root = Path(data_root).resolve()
    classifier = Classifier(model)
    records = [
        {
            "file": Path(path).resolve().relative_to(root).as_posix(),
            "probability": round(classifier.classify(decode_file(path, classifier.preprocess).pixels), 7),
        }
        for path in validation
    ]
    Path(out).write_text(
        json.dumps({"model_version": metadata["version"], "images": records}, indent=0) + "\n"
    )
    print(f"recorded {len(records)} validation images of model {metadata['version']} -> {out}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
