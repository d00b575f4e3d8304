"""``export``: a tiny run trained here, exported in every format, checked as the device sees it.

Training (~10 s) and the four exports (~4 s each) happen once per module; the refusal tests run
before TensorFlow does any work, so they cost almost nothing.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from typer.testing import CliRunner  # noqa: E402

from edge_app.classifier import Classifier  # noqa: E402
from edge_app.contract import read_contract, read_metadata  # noqa: E402
from edge_app.gate import FEATURES_VERSION  # noqa: E402
from edge_app.preprocessing import prepare_file  # noqa: E402
from export.cli import app  # noqa: E402
from export.errors import ExportError, ParityError  # noqa: E402
from export.exporter import export_tflite  # noqa: E402
from train.metrics import choose_threshold, roc_auc  # noqa: E402

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
SUFFIXES = {"int8": "int8", "float16": "fp16", "dynamic": "dynamic", "none": "fp32"}


def _load_maker():
    spec = importlib.util.spec_from_file_location("make_tiny_model", HERE / "data" / "make_tiny_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return _load_maker().train_tiny_run(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def exports(run):
    """Every quantisation exported to its default name in the run folder."""
    return {mode: export_tflite(run, quantize=mode, log=lambda m: None) for mode in SUFFIXES}


@pytest.fixture(scope="module")
def validation(run):
    paths = json.loads((run / "split.json").read_text())["validation"]
    return paths, np.array([int(Path(p).parent.name == "PNEUMONIA") for p in paths])


def _copy_run(run: Path, dest: Path, skip: tuple[str, ...] = ()) -> Path:
    dest.mkdir()
    for name in ("model.keras", "config.json", "metrics.json", "split.json"):
        if name not in skip:
            shutil.copy(run / name, dest / name)
    return dest


# --- the files -------------------------------------------------------------------------------


def test_default_names_and_sizes(run, exports):
    for mode, suffix in SUFFIXES.items():
        path = exports[mode].path
        assert path == run / f"model-{suffix}.tflite"
        assert Path(f"{path}.json").is_file()
        # ~2k parameters: quantisation parameters and metadata outweigh the weights, so sizes
        # say nothing about the formats here (they do for a real run, see the export report).
        assert path.stat().st_size < 100_000


def test_int8_is_full_integer_with_uint8_input_in_litert(exports):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(exports["int8"].path))
    interpreter.allocate_tensors()
    (source,) = interpreter.get_input_details()
    assert source["dtype"] == np.uint8
    assert list(source["shape"]) == list(source["shape_signature"]) == [1, 64, 64, 1]
    assert source["quantization"] == (1.0, 0)  # raw pixels in, rescaling inside the model
    logit, heatmap = interpreter.get_output_details()
    assert list(logit["shape"]) == [1, 1] and logit["dtype"] == np.float32
    assert list(heatmap["shape"]) == [1, 2, 2, 1] and heatmap["dtype"] == np.float32
    outputs = {logit["index"], heatmap["index"]}
    floats = [t for t in interpreter.get_tensor_details() if t["dtype"] == np.float32 and t["index"] not in outputs]
    assert floats == []


@pytest.mark.parametrize("mode", ["float16", "dynamic", "none"])
def test_float_variants_state_float_input(exports, mode):
    contract = read_contract(exports[mode].path)
    assert contract.input_dtype == "float32"
    assert contract.raw["quantization"]["mode"] == mode
    assert contract.raw["quantization"]["calibration"]["images"] == 0


# --- the contract ----------------------------------------------------------------------------


def test_metadata_round_trips_and_describes_the_file(run, exports):
    path = exports["int8"].path
    stored = read_metadata(path)
    assert stored == json.loads(Path(f"{path}.json").read_text()) == exports["int8"].metadata
    contract = read_contract(path)
    config = json.loads((run / "config.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert contract.labels == ("NORMAL", "PNEUMONIA")
    assert contract.image_size == 64 and contract.channels == 1 and contract.input_dtype == "uint8"
    assert contract.output == "logit"
    assert stored["source"]["keras_threshold"] == pytest.approx(metrics["threshold"])
    assert stored["threshold_rule"].startswith(metrics["threshold_rule"] + "; on this file's own scores")
    assert contract.uncertain_band[0] <= contract.threshold <= contract.uncertain_band[1]
    assert contract.preprocess.to_dict() == config["preprocessing"]
    assert stored["training_data_fingerprint"] == config["extra"]["data"]["fingerprint"]
    assert re.fullmatch(r"0\.1\.0\+[0-9a-f]{12}|.+[+.][0-9a-f]{12}", contract.version)
    assert contract.version.endswith(stored["weights_sha256"][:12])
    assert stored["outputs"]["logit"]["position"] == 0
    assert stored["outputs"]["heatmap"]["shape"] == [1, 2, 2, 1]
    assert stored["validation_metrics"]["n"] == len(json.loads((run / "split.json").read_text())["validation"])
    assert stored["gate"]["features_version"] == FEATURES_VERSION and "mean" in stored["gate"]["features"]
    assert stored["gate"]["preprocessing_id"] == contract.preprocess.gate_spec().id == contract.preprocess.id
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stored["created"])


def test_same_weights_same_version(exports):
    versions = {read_contract(exports[mode].path).version for mode in SUFFIXES}
    assert len(versions) == 1


def test_stored_validation_metrics_are_this_files(run, exports, validation):
    paths, labels = validation
    classifier = Classifier(exports["int8"].path)
    images = np.stack([prepare_file(p, classifier.preprocess).pixels for p in paths])
    scores = classifier.predict_batch(images)
    stored = read_metadata(exports["int8"].path)["validation_metrics"]
    assert stored["auc"] == pytest.approx(roc_auc(labels, scores))
    threshold = classifier.contract.threshold
    assert stored["sensitivity"] == pytest.approx(((scores >= threshold) & (labels == 1)).sum() / labels.sum())
    # the run's rule (sensitivity >= its target on validation), applied to this file's own scores
    target = json.loads((run / "config.json").read_text())["sensitivity_target"]
    assert threshold == pytest.approx(choose_threshold(labels, scores, "sensitivity", target)[0])


def test_keep_run_threshold_ships_the_checkpoint_threshold(run, tmp_path):
    metrics = json.loads((run / "metrics.json").read_text())
    kept = export_tflite(run, out=tmp_path / "kept.tflite", keep_run_threshold=True, log=lambda m: None)
    assert read_contract(kept.path).threshold == pytest.approx(metrics["threshold"])
    assert "--keep-run-threshold" in kept.metadata["threshold_rule"]


# --- parity ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(SUFFIXES))
def test_parity_holds(exports, mode):
    parity = exports[mode].parity
    assert parity["passed"] and exports[mode].failures == []
    assert parity["agreement"] >= 0.98
    assert parity["auc_drop"] <= 0.005
    assert parity["heatmap"]["correlation_median"] >= 0.9
    assert parity["latency_ms"]["median"] > 0
    assert read_metadata(exports[mode].path)["parity"]["agreement"] == parity["agreement"]


def test_parity_failure_writes_nothing(run, tmp_path, monkeypatch):
    import export.parity

    monkeypatch.setattr(export.parity, "failures", lambda report: ["forced by the test"])
    out = tmp_path / "rejected.tflite"
    with pytest.raises(ParityError, match="forced by the test"):
        export_tflite(run, quantize="dynamic", out=out, log=lambda m: None)
    assert not out.exists() and not Path(f"{out}.json").exists()


# --- the command line and its refusals -------------------------------------------------------


def test_cli_refuses_existing_output_without_force(run, exports):
    result = CliRunner().invoke(app, ["tflite", str(run)])
    assert result.exit_code == 2
    assert "model-int8.tflite already exists (use --force" in result.output
    assert "Traceback" not in result.output


def test_cli_force_replaces_and_reports_parity(run, exports):
    before = read_metadata(exports["none"].path)["created"]
    result = CliRunner().invoke(app, ["tflite", str(run / "model.keras"), "--quantize", "none", "--force"])
    assert result.exit_code == 0, result.output
    assert "decision agreement at threshold" in result.output
    assert "latency at 1 thread" in result.output
    assert re.search(r"saved .*model-fp32\.tflite \(\d+\.\d KB\)", result.output)
    assert read_contract(exports["none"].path).version == read_contract(exports["int8"].path).version
    assert read_metadata(exports["none"].path)["created"] >= before


def test_cli_refuses_run_without_checkpoint(run, tmp_path):
    broken = _copy_run(run, tmp_path / "broken", skip=("model.keras",))
    result = CliRunner().invoke(app, ["tflite", str(broken)])
    assert result.exit_code == 2
    assert f"run folder {broken} has no model.keras checkpoint" in result.output
    assert "Traceback" not in result.output


def test_cli_refuses_missing_config(run, tmp_path):
    broken = _copy_run(run, tmp_path / "noconfig", skip=("config.json",))
    result = CliRunner().invoke(app, ["tflite", str(broken)])
    assert result.exit_code == 2
    assert "config.json is missing" in result.output


def test_cli_refuses_config_that_contradicts_checkpoint(run, tmp_path):
    broken = _copy_run(run, tmp_path / "mismatch")
    config = json.loads((broken / "config.json").read_text())
    config["image_size"] = 96
    (broken / "config.json").write_text(json.dumps(config))
    result = CliRunner().invoke(app, ["tflite", str(broken)])
    assert result.exit_code == 2
    assert "image_size 96" in result.output and "different runs" in result.output
    assert "Traceback" not in result.output
    assert not (broken / "model-int8.tflite").exists()


def test_refuses_unknown_quantization_and_missing_path(run, tmp_path):
    with pytest.raises(ExportError, match="unknown quantisation"):
        export_tflite(run, quantize="int4", log=lambda m: None)
    result = CliRunner().invoke(app, ["tflite", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "not found" in result.output
