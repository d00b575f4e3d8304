"""One TFLite export, start to finish: run folder -> verified ``.tflite`` carrying its contract.

Order matters and is chosen so that nothing is written unless it is right:

1. check the run folder and the output path (cheap, before TensorFlow is even imported);
2. load the checkpoint, check it against ``config.json``, add the heatmap output;
3. decode validation and calibration images through the device's preprocessing;
4. convert;
5. score the converted file through the device's classifier (it needs a contract to load, so a
   provisional one goes into a temporary copy), compare with Keras, measure latency, and pick
   its threshold by the run's rule on its own clean and shifted validation scores
   (:mod:`export.threshold`);
6. only if parity holds (or ``verify=False``): write the final file, whose metadata holds this
   very file's validation metrics and parity, and re-load it to prove the device accepts it.

The flatbuffer bytes that were verified are the bytes written; only the zip trailer differs.

A run with a pattern head (``train/heads.py``) goes through the same steps, with its third
output described by name, its own parity check and a ``heads`` contract section
(:mod:`export.heads`).
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from edge_app.contract import write_metadata
from export.calibration import (
    CALIBRATION_IMAGES,
    GATE_IMAGES,
    GATE_SEED,
    MIN_CALIBRATION_IMAGES,
    deterministic_sample,
    gate_statistics,
    load_images,
    representative_dataset,
    source_samples,
)
from export.errors import ExportError, ParityError
from export.run import locate_run, split_samples
from export.threshold import device_threshold
from export.tflite import DESCRIPTIONS, QUANTIZATIONS, default_output
from export.wrapper import logged
from train.shift import PERTURBATIONS
from train.data import DataError
from train.loading import load_samples

#: Validation images timed again when ``threads`` > 1.
LATENCY_IMAGES = 50


@dataclass
class ExportResult:
    path: Path
    metadata: dict
    parity: dict
    failures: list[str] = field(default_factory=list)


def check_output(out: Path, force: bool) -> None:
    """Refuse to replace an existing model (or its JSON) unless ``force``."""
    if out.suffix != ".tflite":
        raise ExportError(f"output {out} should end in .tflite")
    if force:
        return
    for path in (out, Path(f"{out}.json")):
        if path.exists():
            raise ExportError(f"{path} already exists (use --force to replace it)")


def _describe(model_path: Path) -> tuple[dict, list[dict]]:
    """The interpreter's input details and output details of a flatbuffer file."""
    from edge_app.runtime import find_interpreter

    _, interpreter_class = find_interpreter()
    interpreter = interpreter_class(model_path=str(model_path))
    return interpreter.get_input_details()[0], interpreter.get_output_details()


@logged("tflite")
def export_tflite(
    run_or_model: str | Path,
    *,
    quantize: str = "int8",
    calibration: str | Path | None = None,
    out: str | Path | None = None,
    force: bool = False,
    verify: bool = True,
    threads: int = 1,
    calibration_images: int = CALIBRATION_IMAGES,
    keep_run_threshold: bool = False,
    log: Callable[[str], None] = print,
) -> ExportResult:
    """Export a run (or its ``model.keras``) to a verified ``.tflite``; see the module docstring."""
    from export.graph import export_graph, map_shape, predict_graph
    from export.heads import (
        device_pattern_probabilities,
        format_pattern_parity,
        keras_pattern_probabilities,
        pattern_failures,
        pattern_outputs,
        pattern_parity,
    )
    from export.metadata import build_metadata, output_description, shift_summary, uncertain_band, weights_sha256
    from train.shift import format_report as format_shift
    from train.shift import shift_report
    from export.parity import (
        failures,
        format_report,
        keras_probabilities,
        map_indices,
        measure,
        tflite_maps,
        tflite_scores,
    )
    from export.run import load_model
    from export.tflite import convert
    from train.metrics import binary_metrics

    if quantize not in QUANTIZATIONS:
        raise ExportError(f"unknown quantisation {quantize!r}; one of {', '.join(QUANTIZATIONS)}")
    if threads < 1 or calibration_images < 1:
        raise ExportError("threads and calibration images must be at least 1")
    run = locate_run(run_or_model)
    out = Path(out) if out else default_output(run.folder, quantize)
    check_output(out, force)
    spec = run.spec
    validation_samples = split_samples(run, "validation")
    pool, source = source_samples(run, calibration)
    sampled = deterministic_sample(pool, calibration_images, run.config.seed)

    model = load_model(run)
    graph = export_graph(model)
    heat_shape = map_shape(graph)
    if heat_shape[1] * heat_shape[2] < 2:
        raise ExportError(
            f"the last feature map is {heat_shape[1]}x{heat_shape[2]}: too small for a heatmap "
            f"(train with a larger image_size or fewer blocks)"
        )

    log(f"decoding {len(validation_samples)} validation and {len(sampled)} calibration images at {spec.id}")
    try:
        validation = load_samples(validation_samples, spec)
    except DataError as exc:
        raise ExportError(f"validation images: {exc}") from None
    images, _ = load_images(sampled, spec, log)
    if not len(images):
        raise ExportError(f"no readable calibration images in the {source}")
    representative = images[:calibration_images]
    calibration_info = {
        "source": source,
        "images": int(len(representative)) if quantize == "int8" else 0,
        "seed": run.config.seed,
        "augmentation": "none",
        "preprocessing_id": spec.id,
    }
    if quantize == "int8" and len(representative) < MIN_CALIBRATION_IMAGES:
        log(
            f"warning: only {len(representative)} calibration images (fewer than "
            f"{MIN_CALIBRATION_IMAGES}); int8 ranges may clip rare intensities"
        )
    # The gate's films are drawn with a seed of their own, not the training seed: the gate
    # describes the data, and the same split gives every model the same ranges (see GATE_SEED).
    # They are read as the gate reads them (PreprocessSpec.gate_spec).
    gate_spec = spec.gate_spec()
    gate_sample = deterministic_sample(pool, GATE_IMAGES, GATE_SEED)
    log(f"decoding {len(gate_sample)} images of the {source} at {gate_spec.id} for the input gate")
    gate_images, gate_colourfulness = load_images(gate_sample, gate_spec, log)
    gate = {**gate_statistics(gate_images, gate_colourfulness), "source": source, "preprocessing_id": gate_spec.id}

    log(f"converting ({DESCRIPTIONS[quantize]})")
    flatbuffer = convert(
        graph, quantize, spec.image_size, representative_dataset(representative) if quantize == "int8" else None
    )

    scheme = run.scheme
    keras_outputs = predict_graph(graph, validation.images)
    logits, keras_maps = keras_outputs[0], keras_outputs[1]
    reference = keras_probabilities(logits)
    weights_hash = weights_sha256(model)
    common = dict(
        run=run,
        quantize=quantize,
        quantization_description=DESCRIPTIONS[quantize],
        weights_hash=weights_hash,
        calibration=calibration_info,
        gate=gate,
    )
    with tempfile.TemporaryDirectory(prefix="pneumoscan-export-") as tmp:
        candidate = Path(tmp) / out.name
        candidate.write_bytes(flatbuffer)
        input_details, output_details = _describe(candidate)
        common["input_details"] = input_details
        common["outputs"] = output_description(output_details, heat_shape)
        if scheme.has_pattern:
            common["outputs"] = pattern_outputs(common["outputs"], candidate, scheme)
        write_metadata(candidate, _with_heads(build_metadata(**common), scheme, run))
        log(f"scoring {len(validation.images)} validation images with the device runtime (1 thread)")
        scores, latencies, runtime = tflite_scores(candidate, validation.images, threads=1)
        chosen = map_indices(len(validation.images))
        device_maps = tflite_maps(candidate, validation.images[chosen])
        if scheme.has_pattern:
            patterns = np.array([s.pattern for s in validation.samples])
            device_pattern = device_pattern_probabilities(candidate, validation.images)
        log(f"shift validation of the int8 file: {len(validation.images)} films x {len(PERTURBATIONS)} perturbations")
        shifted = device_shift_logits(candidate, validation, spec)
        threshold, threshold_rule = device_threshold(run, validation.labels, scores, shifted, keep=keep_run_threshold)
        log(f"threshold {threshold:.4f}: {threshold_rule}")
        shift = shift_report(validation.labels, shifted, threshold)
        log(format_shift(shift))
        more_threads = {}
        if threads > 1:
            _, timed, _ = tflite_scores(candidate, validation.images[:LATENCY_IMAGES], threads=threads)
            more_threads[str(threads)] = float(np.median(timed))

    report = measure(
        validation.labels, reference, scores, threshold, keras_maps[chosen], device_maps,
        latencies, len(flatbuffer), runtime,
    )
    if more_threads:
        report["latency_ms_more_threads"] = more_threads
    problems = failures(report)
    if scheme.has_pattern:
        report["pattern"] = pattern_parity(patterns, keras_pattern_probabilities(keras_outputs[2]), device_pattern)
        problems += pattern_failures(report["pattern"])
    report["passed"] = not problems
    report["flatbuffer_sha256"] = hashlib.sha256(flatbuffer).hexdigest()
    log(format_report(report))
    if scheme.has_pattern:
        log(format_pattern_parity(report["pattern"]))
    if problems and verify:
        raise ParityError(
            f"parity failed: {'; '.join(problems)}. Nothing written; use --no-verify to write it anyway"
        )
    if problems:
        log(f"warning: parity failed ({'; '.join(problems)}); writing anyway because of --no-verify")

    validation_metrics = {
        **binary_metrics(validation.labels, scores, threshold),
        "runtime": runtime,
        "shift": shift_summary(shift),
    }
    metadata = build_metadata(
        **common,
        validation_metrics=validation_metrics,
        uncertain=uncertain_band(validation.labels, scores, threshold),
        parity=report,
        threshold=(threshold, threshold_rule),
    )
    if scheme.has_pattern:
        from train.pattern_metrics import pattern_metrics

        called = scores >= threshold
        has = patterns != -1
        pattern_validation = {
            "runtime": runtime,
            "all_pattern_films": pattern_metrics(patterns, device_pattern, scheme),
            "called_positive": pattern_metrics(np.where(called, patterns, -1), device_pattern, scheme),
            "keras_run": {
                k: run.metrics.get("pattern", {}).get(k) for k in ("stress_summary", "stress", "shift_summary", "shift")
            },
            "films_with_pattern": int(has.sum()),
        }
        metadata = _with_heads(metadata, scheme, run, pattern_validation, threshold)
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in (out, Path(f"{out}.json")):
        stale.unlink(missing_ok=True)  # reached only with force, or when neither exists
    out.write_bytes(flatbuffer)
    metadata = write_metadata(out, metadata)  # as stored: sealed (its "integrity" field added)
    _prove_loadable(out, validation.images[0], scores[0])
    return ExportResult(out, metadata, report, problems)


def _with_heads(metadata: dict, scheme, run, validation: dict | None = None, threshold: float | None = None) -> dict:
    """``metadata`` with the run's screening labels and, for a pattern run, the ``heads`` section
    (its screening threshold: ``threshold``, the file's own, once it is known; the run's before)."""
    from export.heads import heads_section
    from export.metadata import _clean

    metadata = {**metadata, "labels": list(scheme.screening)}
    if scheme.has_pattern:
        extra = run.config.extra
        screening = run.threshold if threshold is None else threshold
        metadata["heads"] = _clean(heads_section(scheme, screening, validation, extra.get("pattern_refit"), extra.get("pattern_graft")))
    return metadata


def device_shift_logits(model_path: Path, validation, spec) -> dict[str, np.ndarray]:
    """The shift validation's logits (:mod:`train.shift`) of the converted file, through the device
    classifier: the validation films re-framed, marked and recompressed, per perturbation."""
    from edge_app.classifier import Classifier
    from train.shift import decode_originals, shift_logits

    classifier = Classifier(model_path, threads=1)

    def score(images: np.ndarray) -> np.ndarray:
        return np.array([classifier.raw_output(image) for image in images])

    return shift_logits(score, decode_originals([s.path for s in validation.samples]), spec)


def _prove_loadable(path: Path, image: np.ndarray, expected: float) -> None:
    """The written file loads in the device's classifier and gives the score that was verified."""
    from edge_app.classifier import Classifier

    got = Classifier(path, threads=1).classify(image)
    if abs(got - expected) > 1e-9:
        raise ExportError(f"{path} scores {got} on re-load but {expected} when verified")
