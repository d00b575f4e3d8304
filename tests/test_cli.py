"""`pneumoscan` end to end: CliRunner for behaviour, real subprocesses for what a clinic runs."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import synthetic_film
from edge_app import cli, model_file
from edge_app.contract import write_metadata
from edge_helpers import HOSTILE, expected_runtime, model_flatbuffer, tiny_metadata, tiny_model, write_hostile_inputs  # noqa: F401

runner = CliRunner()

RESULT_KEYS = {
    "path", "probability", "score", "label", "uncertain", "threshold", "model_version", "latency_ms",
    "threshold_source", "site_profile",
}


def run(*args: str, env: dict | None = None):
    return runner.invoke(cli.app, [str(a) for a in args], env=env)


@pytest.fixture
def films(tmp_path: Path) -> Path:
    """``films/`` with three good images, one in a sub-folder, and a non-image to ignore."""
    folder = tmp_path / "films"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(synthetic_film(96, seed=1)).save(folder / "b.jpeg", quality=95)
    Image.fromarray(synthetic_film(96, seed=2, opacity=1.0)).save(folder / "a.png")
    Image.fromarray(synthetic_film(96, seed=3)).save(folder / "sub" / "c.JPG", quality=95)
    (folder / "readme.txt").write_text("not an image")
    return folder


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv("PNEUMOSCAN_MODEL", raising=False)
    monkeypatch.delenv("PNEUMOSCAN_RUNTIME", raising=False)


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` with its content hash and modification time."""
    return {
        str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# -- predict: formats -------------------------------------------------------------------------


def table_rows(text: str) -> list[str]:
    """The table's lines with a long path's result (on the next line, in the column) joined back."""
    rows: list[str] = []
    for line in text.splitlines():
        if line.startswith(" ") and line.strip() and rows:
            rows[-1] += "  " + line.strip()
        else:
            rows.append(line)
    return rows


def test_predict_table_is_readable(films, tiny_model):
    result = run("predict", films / "b.jpeg", "--model", tiny_model)
    assert result.exit_code == 0, result.output
    lines = table_rows(result.stdout)
    assert lines[0].split() == ["IMAGE", "RESULT"]
    assert lines[1].startswith(str(films / "b.jpeg")) and "score" in lines[1]
    assert "1 image:" in result.stdout
    assert "not a diagnosis" in result.stdout


def test_predict_json_folder_is_recursive_and_sorted(films, tiny_model):
    result = run("predict", films, "--model", tiny_model, "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    meta = tiny_metadata()
    assert [Path(r["path"]).relative_to(films).as_posix() for r in rows] == ["a.png", "b.jpeg", "sub/c.JPG"]
    for row in rows:
        assert set(row) == RESULT_KEYS
        assert 0.0 <= row["probability"] <= 1.0
        assert row["score"] == round(100 * row["probability"])
        assert row["label"] in ("NORMAL", "PNEUMONIA")
        assert row["threshold"] == meta["threshold"] and row["model_version"] == meta["version"]
        assert row["latency_ms"] > 0


def test_predict_jsonl_and_csv_parse(films, tiny_model):
    as_json = json.loads(run("predict", films, "-m", tiny_model, "-f", "json").stdout)
    jsonl = run("predict", films, "-m", tiny_model, "-f", "jsonl")
    assert jsonl.exit_code == 0
    lines = [json.loads(line) for line in jsonl.stdout.splitlines()]
    table = run("predict", films, "-m", tiny_model, "-f", "csv")
    assert table.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(table.stdout)))
    assert [r["path"] for r in lines] == [r["path"] for r in rows] == [r["path"] for r in as_json]
    assert [r["probability"] for r in lines] == [r["probability"] for r in as_json]
    assert [float(r["probability"]) for r in rows] == [r["probability"] for r in as_json]
    assert list(rows[0]) == list(cli_columns())
    assert all(r["error"] == "" for r in rows)


def cli_columns():
    from edge_app.formatting import CSV_COLUMNS

    return CSV_COLUMNS


def test_threshold_override_changes_labels_and_warns(films, tiny_model):
    low = run("predict", films, "-m", tiny_model, "-f", "json", "--threshold", "0.01")
    high = run("predict", films, "-m", tiny_model, "-f", "json", "--threshold", "0.99")
    assert low.exit_code == high.exit_code == 0
    assert {r["label"] for r in json.loads(low.stdout)} == {"PNEUMONIA"}
    assert {r["label"] for r in json.loads(high.stdout)} == {"NORMAL"}
    assert {r["threshold"] for r in json.loads(low.stdout)} == {0.01}
    assert f"instead of the model's validated {tiny_metadata()['threshold']:g}" in low.stderr


# -- predict: hostile inputs and exit codes ---------------------------------------------------


def test_every_hostile_input_gets_a_one_line_reason(tmp_path, tiny_model):
    # Decoding, not gating: a two-tone EXIF test card is rightly "not a chest X-ray" (test_gate.py).
    paths = write_hostile_inputs(tmp_path / "inbox")
    result = run("predict", tmp_path / "inbox", paths["missing"], "-m", tiny_model, "-f", "json", "--no-gate")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    by_path = {row["path"]: row for row in json.loads(result.stdout)}
    assert len(by_path) == len(HOSTILE)
    for name, (_, reason) in HOSTILE.items():
        row = by_path[str(paths[name])]
        if reason is None:
            assert set(row) == RESULT_KEYS, name
        else:
            assert set(row) == {"path", "error"}, name
            assert reason in row["error"] and "\n" not in row["error"], (name, row)
            assert f"{paths[name]}: {row['error']}" in result.stderr  # names the file on stderr
    assert f"{sum(1 for _, r in HOSTILE.values() if r)} of {len(HOSTILE)} inputs" in result.stderr


def test_failed_inputs_do_not_stop_the_batch_and_show_in_table(films, tiny_model):
    result = run("predict", films / "nope.jpeg", films, "-m", tiny_model)
    assert result.exit_code == 1
    lines = table_rows(result.stdout)
    assert lines[1].startswith(str(films / "nope.jpeg")) and "Could not screen: file not found" in lines[1]
    assert len([line for line in lines if "score" in line]) == 3
    assert "4 images:" in result.stdout and "1 could not be screened" in result.stdout


def test_empty_folder_is_a_failed_input(tmp_path, tiny_model):
    (tmp_path / "empty").mkdir()
    result = run("predict", tmp_path / "empty", "-m", tiny_model, "-f", "json")
    assert result.exit_code == 1
    assert "contains no" in json.loads(result.stdout)[0]["error"]


@pytest.mark.parametrize(
    "args",
    [
        ["--threshold", "0"],
        ["--threshold", "1"],
        ["--threshold", "1.5"],
        ["--threshold", "abc"],
        ["--format", "xml"],
        ["--threads", "0"],
        ["--no-such-flag"],
    ],
)
def test_usage_errors_exit_2(films, tiny_model, args):
    result = run("predict", films, "-m", tiny_model, *args)
    assert result.exit_code == 2
    assert result.stdout == ""


def test_no_paths_is_a_usage_error():
    assert run("predict").exit_code == 2


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pneumoscan: error: "), result.stderr
    return lines[0]


def test_missing_model_is_one_line(films, tmp_path):
    assert "model file not found" in one_error_line(run("predict", films, "-m", tmp_path / "none.tflite"))


def test_model_without_metadata_is_refused(films, tiny_model, tmp_path):
    bare = tmp_path / "bare.tflite"
    bare.write_bytes(model_flatbuffer(tiny_model))
    assert "carries no pneumoscan metadata" in one_error_line(run("predict", films, "-m", bare))


def test_model_contradicting_its_metadata_is_refused(films, tiny_model, tmp_path):
    lying = tmp_path / "lying.tflite"
    lying.write_bytes(model_flatbuffer(tiny_model))
    metadata = json.loads(Path(f"{tiny_model}.json").read_text())
    metadata["image_size"] = 128
    metadata["preprocessing"]["image_size"] = 128
    metadata["preprocessing"]["id"] = metadata["preprocessing_id"] = "gray-128px-percentile-v1"
    write_metadata(lying, metadata)
    assert "contradicts its metadata" in one_error_line(run("info", "-m", lying))


def test_garbage_model_is_refused(films, tiny_model, tmp_path):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00" * 4096)
    write_metadata(junk, json.loads(Path(f"{tiny_model}.json").read_text()))
    assert "not a loadable TFLite model" in one_error_line(run("predict", films, "-m", junk))


def test_unknown_runtime_is_refused(films, tiny_model):
    line = one_error_line(run("predict", films, "-m", tiny_model, env={"PNEUMOSCAN_RUNTIME": "onnx"}))
    assert "unknown runtime 'onnx'" in line


def test_default_model_missing_says_how_to_get_one(films, monkeypatch, tmp_path):
    monkeypatch.setattr(model_file, "DEFAULT_MODEL", tmp_path / "models" / "pneumoscan-int8.tflite")
    line = one_error_line(run("predict", films))
    assert "--model" in line and "PNEUMOSCAN_MODEL" in line and "pneumoscan-export" in line


def test_model_from_environment(films, tiny_model, monkeypatch, tmp_path):
    monkeypatch.setattr(model_file, "DEFAULT_MODEL", tmp_path / "absent.tflite")
    result = run("predict", films, "-f", "json", env={"PNEUMOSCAN_MODEL": str(tiny_model)})
    assert result.exit_code == 0, result.output


# -- predict: output files ----------------------------------------------------------------------


def test_output_file_and_refusal_to_overwrite(films, tiny_model, tmp_path):
    out = tmp_path / "results.csv"
    first = run("predict", films, "-m", tiny_model, "-f", "csv", "-o", out)
    assert first.exit_code == 0 and first.stdout == ""
    assert "Wrote 3 results" in first.stderr
    written = out.read_text()
    assert len(list(csv.DictReader(io.StringIO(written)))) == 3

    again = run("predict", films, "-m", tiny_model, "-f", "json", "-o", out)
    assert "already exists" in one_error_line(again) and "--force" in again.stderr
    assert out.read_text() == written

    forced = run("predict", films, "-m", tiny_model, "-f", "json", "-o", out, "--force")
    assert forced.exit_code == 0
    assert len(json.loads(out.read_text())) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["films", "results.csv"]  # no temp files


def test_output_never_overwrites_an_input(films, tiny_model):
    target = films / "b.jpeg"
    before = target.read_bytes()
    result = run("predict", target, "-m", tiny_model, "-o", target, "--force")
    assert "is the input" in one_error_line(result)
    assert target.read_bytes() == before


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_nothing_is_written_into_an_input_folder_or_over_an_input_force_or_not(films, tiny_model, tmp_path, fmt):
    os.link(films / "b.jpeg", tmp_path / "hard.jpeg")
    (tmp_path / "link").symlink_to(films / "sub")
    before = snapshot(tmp_path)
    cases = [
        ([films], films / "b.jpeg", "is inside the input folder"),  # the hostile field test's case
        ([films], films / "results.csv", "is inside the input folder"),
        ([films], films / "sub" / ".." / "r.csv", "is inside the input folder"),
        ([films], tmp_path / "link" / "r.csv", "is inside the input folder"),  # via a symlink
        ([films / "a.png"], tmp_path / "hard.jpeg", "another name for the same file"),  # hard link
        ([tmp_path / "link"], films / "sub" / "r.csv", "is inside the input folder"),
    ]
    for inputs, out, reason in cases:
        for force in ([], ["--force"]):
            done = run("predict", *inputs, films / "b.jpeg", "-m", tiny_model, "-f", fmt, "-o", out, *force)
            assert done.exit_code == 2 and reason in one_error_line(done), (out, done.stderr)
    assert snapshot(tmp_path) == before


def test_results_stream_to_the_output_as_they_are_made(films, tiny_model, tmp_path):
    """A kill mid-way keeps every result written before it (csv, jsonl, table: one line each)."""
    many = tmp_path / "many"
    many.mkdir()
    for i in range(40):
        shutil.copy(films / "a.png", many / f"f{i:02d}.png")
        (many / f"f{i:02d}.png").write_bytes((films / "a.png").read_bytes() + bytes([i]))
    out = tmp_path / "r.csv"
    cmd = [sys.executable, "-m", "edge_app", "predict", str(many), "-m", str(tiny_model), "-f", "csv", "-o", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < 6):
            time.sleep(0.02)
        proc.kill()
    finally:
        proc.wait()
    lines = out.read_text().splitlines()
    assert lines[0].startswith("path,probability") and 5 <= len(lines) - 1 < 40, len(lines)
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert all(row["path"].endswith(".png") for row in rows[:-1])  # every complete row is whole


def test_full_disk_is_one_line_and_keeps_what_was_written(films, tiny_model, tmp_path):
    # /dev/full: every write fails with ENOSPC
    done = run("predict", films, "-m", tiny_model, "-f", "csv", "-o", "/dev/full", "--force")
    assert done.exit_code == 2
    assert one_error_line(done).startswith("pneumoscan: error: cannot write results to --output /dev/full: No space left on device")
    # stdout redirected to a full disk
    proc = subprocess.run([sys.executable, "-m", "edge_app", "predict", str(films), "-m", str(tiny_model)],
                          stdout=open("/dev/full", "w"), stderr=subprocess.PIPE, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "cannot write results to stdout: No space left on device" in proc.stderr


def _mount_tiny_tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    return done.returncode == 0


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "table", "json"])
def test_enospc_on_a_tiny_tmpfs(films, tiny_model, tmp_path, fmt):
    disk = tmp_path / "disk"
    if not _mount_tiny_tmpfs(disk, "4k"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        many = tmp_path / "many"
        many.mkdir()
        for i in range(60):
            (many / f"film-with-a-long-name-{i:03d}.png").write_bytes((films / "a.png").read_bytes() + bytes([i]))
        out = disk / "r.out"
        done = run("predict", many, "-m", tiny_model, "-f", fmt, "-o", out)
        assert done.exit_code == 2
        assert "No space left on device" in one_error_line(done)
        written = out.read_text() if out.exists() else ""
        if fmt == "json":
            assert written == "" and os.listdir(disk) == []  # whole or nothing, no temp file left
        else:
            complete = written[: written.rfind("\n") + 1].splitlines()
            assert len(complete) > 3  # what fitted is kept, line by line
            if fmt == "jsonl":
                assert all(json.loads(line)["path"].endswith(".png") for line in complete)
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_output_in_missing_folder_is_a_usage_error(films, tiny_model, tmp_path):
    assert "does not exist" in one_error_line(run("predict", films, "-m", tiny_model, "-o", tmp_path / "no" / "r.json"))


def test_inputs_are_never_written_or_changed(tmp_path, tiny_model):
    inbox = tmp_path / "inbox"
    write_hostile_inputs(inbox)
    before = snapshot(inbox)
    for fmt in ("table", "json", "csv"):
        run("predict", inbox, "-m", tiny_model, "-f", fmt)
    run("predict", inbox, "-m", tiny_model, "-o", tmp_path / "out.json", "-f", "json")
    assert snapshot(inbox) == before


def _predict_with_stderr_on_a_terminal(folder: Path, model: Path, out: Path) -> tuple[int, str]:
    """Run ``predict`` as a real process whose stderr is a pseudo-terminal; return its exit code
    and what the terminal showed."""
    import pty

    master, slave = pty.openpty()
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "edge_app", "predict", str(folder), "-m", str(model), "-f", "json", "-o", str(out)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave, env=subprocess_env(COLUMNS="100"),
        )
        os.close(slave)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        return child.wait(timeout=120), shown.decode("utf-8", "replace")
    finally:
        os.close(master)


def test_progress_bar_counts_images_on_a_terminal_only(tiny_model, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    count = cli.PROGRESS_MIN_IMAGES + 2
    for i in range(count):
        Image.fromarray(synthetic_film(96, seed=i)).save(folder / f"f{i}.png")
    code, shown = _predict_with_stderr_on_a_terminal(folder, tiny_model, tmp_path / "r.json")
    assert code == 0, shown
    assert "Screening" in shown and f"{count}/{count}" in shown  # the count a nurse watches
    assert len(json.loads((tmp_path / "r.json").read_text())) == count
    piped = subprocess.run(
        [sys.executable, "-m", "edge_app", "predict", str(folder), "-m", str(tiny_model), "-f", "json"],
        capture_output=True, text=True, env=subprocess_env(), timeout=120,
    )
    assert piped.returncode == 0 and "Screening" not in piped.stderr  # a log file gets no bar
    assert len(json.loads(piped.stdout)) == count


def test_progress_only_for_more_than_a_few_images_on_a_terminal():
    assert not cli._want_progress(cli.PROGRESS_MIN_IMAGES)


# -- info and bench -----------------------------------------------------------------------------


def test_info_table_and_json(tiny_model):
    table = run("info", "-m", tiny_model)
    assert table.exit_code == 0
    assert "metadata.labels" in table.stdout and '["NORMAL", "PNEUMONIA"]' in table.stdout
    assert "runtime" in table.stdout and "input.shape" in table.stdout
    data = json.loads(run("info", "-m", tiny_model, "--format", "json").stdout)
    assert data["model_path"] == str(tiny_model)
    assert data["runtime"] == expected_runtime()
    # The interpreter's own quantisation must be what export promised in the contract.
    promised = tiny_metadata()["input_quantization"]
    assert data["input"] == {"shape": [1, 64, 64, 1], "dtype": "uint8", "quantization": promised}
    assert data["metadata"] == tiny_metadata()


def test_bench_reports_latency_and_memory(tiny_model):
    result = run("bench", "-m", tiny_model, "--runs", "3", "--warmup", "1", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    for part in ("preprocess", "inference", "total"):
        assert 0 < report[part]["median_ms"] <= report[part]["p95_ms"]
    assert report["peak_rss_mb"] > 10 and report["runs"] == 3
    table = run("bench", "-m", tiny_model, "--runs", "2", "--warmup", "0")
    assert "p95" in table.stdout and "peak memory" in table.stdout


def test_bench_with_unusable_image_is_one_line(tiny_model, tmp_path):
    bad = tmp_path / "bad.jpeg"
    bad.write_text("no")
    assert "not an image" in one_error_line(run("bench", bad, "-m", tiny_model, "--runs", "1"))


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and result.stdout.startswith("pneumoscan ")


# -- real processes -----------------------------------------------------------------------------


def subprocess_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PNEUMOSCAN_")}
    return {**env, **extra}


def test_python_m_edge_app_runs_predict(films, tiny_model):
    done = subprocess.run(
        [sys.executable, "-m", "edge_app", "predict", str(films), "-m", str(tiny_model), "-f", "jsonl"],
        capture_output=True, text=True, env=subprocess_env(), timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 3
    assert done.stderr == ""  # the runtime's start-up INFO line is filtered out


def test_console_script_exit_codes_and_no_traceback(tmp_path, tiny_model):
    script = Path(sys.executable).with_name("pneumoscan")
    if not script.exists():
        pytest.skip("the pneumoscan console script is not installed in this environment")
    paths = write_hostile_inputs(tmp_path / "inbox")
    bad = subprocess.run(
        [str(script), "predict", str(paths["bomb"]), str(paths["truncated"]), str(paths["rgba"]), "-m", str(tiny_model)],
        capture_output=True, text=True, env=subprocess_env(), timeout=120,
    )
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr + bad.stdout
    assert "too large" in bad.stdout and "truncated" in bad.stdout and "score" in bad.stdout
    usage = subprocess.run(
        [str(script), "predict", str(paths["rgba"]), "-m", str(tmp_path / "x.tflite")],
        capture_output=True, text=True, env=subprocess_env(), timeout=120,
    )
    assert usage.returncode == 2 and usage.stderr.count("\n") == 1


# What the device CLI must never import: TensorFlow and the training packages (the device has
# none of them), and pydantic, which typer 0.29 brings in at ~0.1 s of the 0.5 s cold start
# (pyproject.toml bounds typer for it; benchmarks/cold_start.py --compare-venv measures it).
HEAVY_PROBE = """
import json, sys
HEAVY = {'tensorflow', 'keras', 'train', 'export', 'pydantic'}
import edge_app.cli
after_import = sorted(m for m in sys.modules if m.split('.')[0] in HEAVY)
sys.argv = ['pneumoscan', 'predict', *sys.argv[1:]]
try:
    edge_app.cli.main()
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in sys.modules if m.split('.')[0] in HEAVY)
print(json.dumps({'code': code, 'after_import': after_import, 'after_predict': heavy}))
"""


def test_cli_and_predict_never_import_tensorflow_or_pydantic(films, tiny_model, tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", HEAVY_PROBE, str(films), "-m", str(tiny_model), "-f", "json", "-o", str(tmp_path / "r.json")],
        capture_output=True, text=True, env=subprocess_env(PNEUMOSCAN_RUNTIME=expected_runtime()), timeout=120,
    )
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout.splitlines()[-1])
    assert probe == {"code": 0, "after_import": [], "after_predict": []}
    assert len(json.loads((tmp_path / "r.json").read_text())) == 3


def runtime_available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@pytest.mark.parametrize(
    "runtime, module",
    [
        ("litert", "ai_edge_litert"),
        ("tflite_runtime", "tflite_runtime"),
        pytest.param("tensorflow", "tensorflow", marks=pytest.mark.slow),
    ],
)
def test_predict_under_each_installed_runtime(films, tiny_model, runtime, module):
    """CI runs this wherever a runtime is installed; every runtime must give the same numbers."""
    if not runtime_available(module):
        pytest.skip(f"{module} is not installed here")
    outputs = {}
    for name in {"litert", runtime}:
        if not runtime_available({"litert": "ai_edge_litert"}.get(name, module)):
            continue
        done = subprocess.run(
            [sys.executable, "-m", "edge_app", "predict", str(films), "-m", str(tiny_model), "-f", "json"],
            capture_output=True, text=True, env=subprocess_env(PNEUMOSCAN_RUNTIME=name), timeout=300,
        )
        assert done.returncode == 0, done.stderr
        outputs[name] = [(r["path"], r["probability"]) for r in json.loads(done.stdout)]
    info = subprocess.run(
        [sys.executable, "-m", "edge_app", "info", "-m", str(tiny_model), "-f", "json"],
        capture_output=True, text=True, env=subprocess_env(PNEUMOSCAN_RUNTIME=runtime), timeout=300,
    )
    assert json.loads(info.stdout)["runtime"] == runtime
    if len(outputs) == 2:
        for (path_a, p_a), (path_b, p_b) in zip(*outputs.values()):
            assert path_a == path_b and abs(p_a - p_b) < 1e-6


# -- predict: DICOM, privacy, the input gate, heatmaps, the uncertain band --------------------


def dicom_cases() -> list[str]:
    """Encodings a clinic's X-ray unit may send, compressed ones where a codec is installed."""
    from pydicom.pixels import get_decoder, get_encoder
    from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless

    names = ["mono2-8bit", "mono2-12bit", "mono2-16bit", "mono1-8bit", "mono1-12bit", "rescale",
             "voi-window", "voi-window-mono1", "voi-lut"]
    for syntax in (RLELossless, JPEGLSLossless, JPEG2000Lossless):
        if get_decoder(syntax).is_available and get_encoder(syntax).is_available:
            names.append(f"mono2-12bit+{syntax.name}")
    return names


@pytest.fixture
def dicom_folder(tmp_path) -> Path:
    """``dicom/`` with each case twice: as DICOM and as the PNG it must look like."""
    pytest.importorskip("pydicom")
    from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless
    from test_dicom import case, save, save_png

    syntaxes = {s.name: s for s in (RLELossless, JPEGLSLossless, JPEG2000Lossless)}
    folder = tmp_path / "dicom"
    folder.mkdir()
    for i, name in enumerate(dicom_cases()):
        base, _, syntax = name.partition("+")
        ds, expected = case(base, synthetic_film(128, seed=20 + i, opacity=float(i % 2)))
        if syntax:
            ds.compress(syntaxes[syntax])
        save(ds, folder / f"{i:02d}.dcm")
        save_png(expected, folder / f"{i:02d}.png")
    return folder


def test_dicom_gives_the_same_probability_as_the_equivalent_png(dicom_folder, tiny_model):
    result = run("predict", dicom_folder, "-m", tiny_model, "-f", "json")
    assert result.exit_code == 0, result.output  # and every one passes the input gate
    rows = {Path(r["path"]).name: r for r in json.loads(result.stdout)}
    names = dicom_cases()
    assert len(rows) == 2 * len(names)
    for i, name in enumerate(names):
        dcm, png = rows[f"{i:02d}.dcm"], rows[f"{i:02d}.png"]
        assert abs(dcm["probability"] - png["probability"]) <= 0.02, (name, dcm, png)
        assert dcm["dicom"]["modality"] == "DX" and dcm["dicom"]["view_position"] == "PA"
        assert "dicom" not in png


def test_extensionless_dicom_in_a_folder_is_screened(dicom_folder, tiny_model, tmp_path):
    scanner = tmp_path / "export"
    scanner.mkdir()
    (scanner / "IM000001").write_bytes((dicom_folder / "00.dcm").read_bytes())
    (scanner / "DICOMDIR").write_bytes((dicom_folder / "00.dcm").read_bytes())  # an index: skipped
    result = run("predict", scanner, "-m", tiny_model, "-f", "json")
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert row["path"].endswith("IM000001") and row["dicom"]["bits_stored"] == 8


PATIENT_VALUES = ("Doe", "Jane", "PID-0042", "20190304")


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_no_patient_identifiers_unless_asked(dicom_folder, tiny_model, fmt):
    private = run("predict", dicom_folder / "00.dcm", "-m", tiny_model, "-f", fmt)
    assert private.exit_code == 0, private.output
    assert not any(value in private.output for value in PATIENT_VALUES)
    shared = run("predict", dicom_folder / "00.dcm", "-m", tiny_model, "-f", fmt, "--with-ids")
    if fmt == "table":  # the table shows no header fields at all
        assert not any(value in shared.output for value in PATIENT_VALUES)
    else:
        assert all(value in shared.stdout for value in PATIENT_VALUES)
    if fmt == "json":
        info = json.loads(shared.stdout)[0]["dicom"]
        assert info["patient_id"] == "PID-0042" and info["patient_birth_date"] == "20190304"
        assert "patient_id" not in json.loads(private.stdout)[0]["dicom"]


def test_dicom_without_pydicom_is_one_line_saying_how_to_install(dicom_folder, tiny_model, monkeypatch):
    from edge_app.dicom import INSTALL_HINT

    monkeypatch.setitem(sys.modules, "pydicom", None)  # import pydicom now raises ImportError
    result = run("predict", dicom_folder / "00.dcm", dicom_folder / "00.png", "-m", tiny_model, "-f", "json")
    assert result.exit_code == 1
    rows = json.loads(result.stdout)
    assert rows[0]["error"] == INSTALL_HINT and rows[1]["probability"] is not None


def test_not_a_chest_xray_is_refused_unless_no_gate(films, tiny_model, tmp_path):
    photo = tmp_path / "receipt.png"
    Image.fromarray((np.dstack([synthetic_film(200)] * 3) * np.array([1.0, 0.7, 0.4])).astype(np.uint8)).save(photo)
    gated = run("predict", photo, films / "b.jpeg", "-m", tiny_model, "-f", "json")
    assert gated.exit_code == 1
    rows = json.loads(gated.stdout)
    assert rows[0] == {"path": str(photo), "error": "not a chest X-ray: colour image (a photo or a screenshot?)"}
    assert rows[1]["probability"] is not None
    assert f"{photo}: not a chest X-ray" in gated.stderr

    table = run("predict", photo, "-m", tiny_model)
    assert "Could not screen: not a chest X-ray: colour image" in table.stdout

    ungated = run("predict", photo, "-m", tiny_model, "-f", "json", "--no-gate")
    assert ungated.exit_code == 0 and json.loads(ungated.stdout)[0]["score"] is not None
    assert "input gate off" in ungated.stderr


def test_model_without_gate_statistics_needs_no_gate(films, tiny_model, tmp_path):
    old = tmp_path / "old.tflite"
    old.write_bytes(model_flatbuffer(tiny_model))
    metadata = tiny_metadata()
    del metadata["gate"]
    write_metadata(old, metadata)
    line = one_error_line(run("predict", films, "-m", old))
    assert "no input-gate statistics" in line and "--no-gate" in line
    assert run("predict", films, "-m", old, "--no-gate").exit_code == 0


def test_heatmaps_go_to_their_folder_never_beside_the_inputs(films, tiny_model, tmp_path):
    before = snapshot(films)
    out = tmp_path / "heatmaps"
    result = run("predict", films, "-m", tiny_model, "-f", "json", "--heatmap", out)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    written = sorted(out.iterdir())
    assert sorted(Path(r["heatmap"]) for r in rows) == written and len(written) == 3
    for row in rows:
        name = Path(row["path"]).name
        heat = Path(row["heatmap"])
        assert heat.name.startswith(f"{name}-") and heat.name.endswith(".heatmap.png")
        with Image.open(row["path"]) as film, Image.open(heat) as image:
            assert image.size == film.size and image.mode == "RGB"  # 96 px films keep their size
    assert snapshot(films) == before

    first = snapshot(out)
    again = run("predict", films, "-m", tiny_model, "-f", "json", "--heatmap", out)
    assert again.exit_code == 0 and len(list(out.iterdir())) == 6  # new names, nothing replaced
    assert {name: value for name, value in snapshot(out).items() if name in first} == first


@pytest.mark.parametrize("where", ["input folder", "inside it", "beside an input file"])
def test_heatmap_folder_among_the_inputs_is_refused(films, tiny_model, where):
    target = {"input folder": films, "inside it": films / "heat", "beside an input file": films / "sub"}[where]
    args = [films / "sub" / "c.JPG"] if where == "beside an input file" else [films]
    before = snapshot(films)
    line = one_error_line(run("predict", *args, "-m", tiny_model, "--heatmap", target))
    assert "heatmaps must go elsewhere" in line
    assert snapshot(films) == before and not (films / "heat").exists()


def test_uncertain_band_reads_uncertain(films, tiny_model, tmp_path):
    wide = tmp_path / "wide-band.tflite"
    wide.write_bytes(model_flatbuffer(tiny_model))
    metadata = tiny_metadata()
    metadata["uncertain_band"] = [0.0, 1.0]
    write_metadata(wide, metadata)
    rows = json.loads(run("predict", films, "-m", wide, "-f", "json").stdout)
    assert {r["uncertain"] for r in rows} == {True}
    table = run("predict", films, "-m", wide).stdout
    assert table.count("Uncertain \u2014 needs review by a clinician (score ") == 3
    assert "3 uncertain" in table
    point = json.loads(run("predict", films, "-m", tiny_model, "-f", "json").stdout)  # band = the threshold
    assert {r["uncertain"] for r in point} == {False}


def test_bench_times_a_dicom_file_like_predict_reads_it(dicom_folder, tiny_model):
    result = run("bench", dicom_folder / "01.dcm", "-m", tiny_model, "--runs", "3", "--warmup", "0", "-f", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["runs"] == 3


# -- predict --samples: the README's first command --------------------------------------------


def test_samples_are_installed_with_their_attribution():
    names = sorted(p.name for p in cli.SAMPLES_DIR.glob("*.jpeg"))
    assert len(names) == 3 and {n.split("-", 1)[0] for n in names} == {"NORMAL", "PNEUMONIA"}
    attribution = (cli.SAMPLES_DIR / "ATTRIBUTION.md").read_text()
    assert "CC BY 4.0" in attribution and "10.17632/rscbjbr9sj.2" in attribution
    for name in names:  # each is named with its original file name
        assert name.split("-", 1)[1] in attribution


def test_predict_samples_screens_the_bundled_films_correctly():
    from edge_app.model_file import DEFAULT_MODEL

    if not DEFAULT_MODEL.is_file():
        pytest.skip("this installation ships no model")
    result = run("predict", "--samples", "-f", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [Path(r["path"]).resolve().parent for r in rows] == [cli.SAMPLES_DIR] * 3
    for row in rows:  # the bundled model gets every sample right (each name starts with its label)
        assert row["label"] == Path(row["path"]).name.split("-", 1)[0] and not row["uncertain"], row


def test_predict_needs_a_path_or_samples():
    assert "--samples" in one_error_line(run("predict"))


@pytest.mark.parametrize(
    "change",
    [
        {"threshold": "abc"}, {"threshold": None}, {"image_size": "abc"}, {"labels": 5},
        {"uncertain_band": "x"}, {"uncertain_band": [0.3]}, {"labels": ["PNEUMONIA", "NORMAL"]},
        {"output": "probability"}, {"gate": {"features_version": 2, "features": {"mean": {"low": "x"}}}},
        {"preprocessing": {"image_size": 64, "normalization": "equalize", "version": 1, "id": "gray-64px-percentile-v1"}},
        {"preprocessing": {"image_size": 64, "normalization": "percentile", "version": 99}},
    ],
)
def test_malformed_or_contradictory_metadata_is_one_line_and_exit_2(tmp_path, films, change):
    from edge_helpers import model_with_metadata, tiny_metadata

    model = model_with_metadata(tmp_path / "bad.tflite", {**tiny_metadata(), **change})
    for command in (["predict", str(films)], ["info"], ["predict", str(films), "--no-gate"]):
        done = run(*command, "--model", model)
        assert done.exit_code == 2, (command, done.output)
        assert done.stdout == "" and len(done.stderr.splitlines()) == 1, done.stderr
        assert done.stderr.startswith("pneumoscan: error: ") and "Traceback" not in done.stderr


def test_predict_with_a_pattern_model_names_the_pattern_of_positive_films(tmp_path, monkeypatch):
    from edge_helpers import TINY_PATTERN_MODEL, pattern_films

    pattern_films(tmp_path)
    monkeypatch.chdir(tmp_path)  # short paths: one table line per film
    args = ("predict", "--model", TINY_PATTERN_MODEL, "--no-gate", "clear.png", "bacterial.png", "viral.png")
    result = run(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    by_name = {Path(r["path"]).stem: r for r in json.loads(result.stdout)}
    assert by_name["clear"]["label"] == "NORMAL" and by_name["clear"]["pattern"] is None
    assert by_name["clear"]["pattern_score"] is None
    assert (by_name["bacterial"]["label"], by_name["bacterial"]["pattern"]) == ("PNEUMONIA", "bacterial")
    assert by_name["viral"]["pattern"] == "viral" and 50 <= by_name["viral"]["pattern_score"] <= 100
    table = run(*args).stdout
    viral_line = next(line for line in table.splitlines() if "viral.png" in line)
    assert viral_line.endswith(f"pattern more like viral pneumonia ({by_name['viral']['pattern_score']}/100)")
    assert "pattern" not in next(line for line in table.splitlines() if "clear.png" in line)
    rows = list(csv.DictReader(io.StringIO(run(*args, "--format", "csv").stdout)))
    assert [r["pattern"] for r in rows] == ["", "bacterial", "viral"]


def test_predict_with_the_two_class_model_prints_no_pattern_fields(tiny_model, tmp_path):
    from edge_helpers import pattern_films

    films = pattern_films(tmp_path)
    rows = json.loads(run("predict", "--model", tiny_model, "--no-gate", "--format", "json", *films.values()).stdout)
    assert all("pattern" not in r and "pattern_score" not in r for r in rows)
