"""Where does a run's model look? Mean class-activation maps over its validation images.

    python scripts/heatmap_focus.py RUN_DIR [--out FILE.png]

Prints, per class, the mean local-logit map (the on-device heatmap computed with Keras) and the
share of positive evidence that falls in the outer ring of cells (image borders, where film
markers, text and collimation edges sit, rather than the lungs). A model that uses shortcuts
tends to put its evidence for NORMAL or PNEUMONIA on the borders.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from edge_app.preprocessing import PreprocessSpec
from train.data import CLASS_NAMES, patient_of, Sample
from train.loading import load_samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    import keras

    from export.graph import export_graph, predict_graph

    config = json.loads((args.run / "config.json").read_text())
    spec = PreprocessSpec.from_dict(config["preprocessing"])
    paths = json.loads((args.run / "split.json").read_text())["validation"]
    samples = [Sample(Path(p), int("PNEUMONIA" in Path(p).parent.name), patient_of(p), "") for p in paths]
    loaded = load_samples(samples, spec)
    graph = export_graph(keras.models.load_model(args.run / "model.keras"))
    _, maps = predict_graph(graph, loaded.images)
    h, w = maps.shape[1:]
    ring = np.ones((h, w), bool)
    ring[1:-1, 1:-1] = False
    for label, name in enumerate(CLASS_NAMES):
        mean = maps[loaded.labels == label].mean(axis=0)
        sign = 1 if label == 1 else -1  # evidence for this class
        evidence = np.clip(sign * maps[loaded.labels == label], 0, None)
        share = evidence[:, ring].sum() / max(evidence.sum(), 1e-9)
        print(f"{name}: mean local logit map (rows top to bottom):")
        for row in mean:
            print("   " + " ".join(f"{v:+6.2f}" for v in row))
        print(f"{name}: share of its evidence on the border ring ({ring.sum()} of {h * w} cells): {share:.2f}")
    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(7, 3.5))
        for ax, label, name in zip(axes, (0, 1), CLASS_NAMES):
            base = loaded.images[loaded.labels == label].mean(axis=0)
            ax.imshow(base, cmap="gray")
            ax.imshow(maps[loaded.labels == label].mean(axis=0), cmap="coolwarm", alpha=0.45,
                      extent=(0, base.shape[1], base.shape[0], 0), vmin=-6, vmax=6)
            ax.set_title(f"mean map, {name}")
            ax.axis("off")
        fig.tight_layout()
        fig.savefig(args.out, dpi=100)


if __name__ == "__main__":
    main()
