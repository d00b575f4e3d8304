"""Render results: ``table`` for a person, ``json``/``jsonl``/``csv`` for programs and spreadsheets.

The one renderer for a result wherever it is written: ``predict`` prints results with
:func:`render`, ``history`` prints the audit log with :func:`render_log`, and both build every
machine format from :meth:`Result.to_dict`, so a film has the same fields under the same names
and the same CSV columns (:data:`CSV_COLUMNS`) whether it was screened now or read back from the
log; the log adds its own columns after them (:data:`LOG_COLUMNS`). A failed input is
``{"path", "error"}`` in JSON and a row with an empty probability and a filled ``error`` column in
CSV. Nested fields (a DICOM file's ``"dicom"`` header fields) become dotted CSV columns such as
``dicom.modality``. A pattern model's ``pattern`` and ``pattern_score`` (:mod:`edge_app.results`)
follow the fixed columns (:data:`PATTERN_COLUMNS`), in every format, whenever a result has them.

Times in the log are stored in UTC and shown in the device's local time with its offset, so an
exported sheet is unambiguous and still reads like the clinic's clock.
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from edge_app.results import Result, advice
from edge_app.screening import Summary

if TYPE_CHECKING:
    from edge_app.audit_log import LogEntry

FORMATS = ("table", "json", "jsonl", "csv")

#: ``history`` formats (a log is read by people and spreadsheets; no streaming needed).
LOG_FORMATS = ("table", "csv", "json")

#: CSV columns of a result, in order; keys a result adds through ``extra`` follow them.
CSV_COLUMNS = (
    "path",
    "probability",
    "score",
    "label",
    "uncertain",
    "threshold",
    "model_version",
    "latency_ms",
    "error",
    "threshold_source",
    "site_profile",
    # What to check before trusting a result screened anyway (edge_app.results.CAUTION);
    # empty for almost every film.
    "caution",
)

#: A pattern model's fields, right after :data:`CSV_COLUMNS` when a run's results have them (a
#: two-class model's CSV is unchanged).
PATTERN_COLUMNS = ("pattern", "pattern_score")

#: What the audit log knows about a result beyond the result itself: after :data:`CSV_COLUMNS`.
LOG_COLUMNS = ("status", "created_at", "sha256", "size")

#: Paths longer than this don't widen the table's first column for everybody: such a path gets
#: a line of its own and its result goes on the next line, in the column.
MAX_PATH_WIDTH = 60

DISCLAIMER = "A screening aid, not a diagnosis: a clinician decides."

#: Characters a terminal or a table must never receive raw from an untrusted string: control
#: characters (newline, carriage return, ESC starting an ANSI sequence, ...), and format
#: characters such as the bidirectional overrides (U+202E would show ``gpj.exe`` as ``exe.jpg``)
#: and zero-width ones; line and paragraph separators; lone surrogates.
_UNPRINTABLE_CATEGORIES = ("Cc", "Cf", "Zl", "Zp", "Cs")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """``text`` safe for a terminal and for a table row: every character that could move the
    cursor, start an escape sequence, reorder the line or break it is shown as an escape
    (``\\n``, ``\\x1b``, ``\\u202e``), and a backslash as ``\\\\`` so the result is unambiguous.

    For file names and DICOM text (untrusted) in the table format and on stderr; JSON stays
    exact (``json`` escapes these itself) and CSV quotes them (:func:`csv_text`).
    """
    out = []
    for ch in str(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch in _NAMED_ESCAPES:
            out.append(_NAMED_ESCAPES[ch])
        elif unicodedata.category(ch) in _UNPRINTABLE_CATEGORIES:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)


def summary_line(summary: Summary) -> str:
    images = "image" if summary.total == 1 else "images"
    parts = [
        f"{summary.likely} signs of pneumonia likely",
        f"{summary.uncertain} uncertain",
        f"{summary.clear} no signs found",
    ]
    if summary.failed:
        parts.append(f"{summary.failed} could not be screened")
    return f"{summary.total} {images}: " + ", ".join(parts) + "."


def _path_width(paths: Sequence[str]) -> int:
    return min(max(len(printable(p)) for p in paths), MAX_PATH_WIDTH)


def _row(before: str, path: str, width: int, after: str) -> list[str]:
    """One table row; a path wider than its column goes on a line of its own, so the columns
    after it stay aligned (a file name is never cut: it identifies the film). ``path`` and
    ``after`` are escaped (:func:`printable`): a name holding a newline cannot forge a row."""
    path, after = printable(path), printable(after)
    if len(path) <= width:
        return [f"{before}{path:<{width}}  {after}"]
    return [f"{before}{path}", f"{' ' * len(before)}{'':<{width}}  {after}"]


def _threshold_words(result: Result) -> str:
    """``0.76 (site profile 3ee6f6607e7b17a3)``, ``0.32 (model)``: which rule decided."""
    where = {"site": f"site profile {result.site_profile}", "option": "--threshold"}.get(
        result.threshold_source or "model", "model"
    )
    return f"{result.threshold:g} ({where})"


def format_table(
    results: list[Result], positive_label: str = "PNEUMONIA", pattern_display: dict[str, str] | None = None
) -> str:
    """One line per image (path, then the advice line) and a summary; ``pattern_display`` is the
    contract's words for each pattern label (:func:`edge_app.results.pattern_words`)."""
    return _collect("table", results, positive_label, pattern_display)


def _with_pattern(columns: Sequence[str], pattern: bool) -> tuple[str, ...]:
    """``columns`` with :data:`PATTERN_COLUMNS` after the last of :data:`CSV_COLUMNS` (so before
    the log's own columns and the extra fields), if ``pattern``."""
    columns = [c for c in columns if c not in PATTERN_COLUMNS]
    if not pattern:
        return tuple(columns)
    at = max((i + 1 for i, c in enumerate(columns) if c in CSV_COLUMNS), default=len(columns))
    return (*columns[:at], *PATTERN_COLUMNS, *columns[at:])


class ResultStream:
    """Writes results one by one as they are made, each as soon as it exists: ``table``, ``csv``
    and ``jsonl`` give one line (or two, for a long path) per result, so a kill or a full disk
    loses at most the line being written; ``json``, one document, is written by :meth:`finish`.

    ``write(text)`` receives complete lines. ``paths`` (every path that will be reported, known
    before screening) sets the table's column width; ``columns`` the CSV header, written first
    (see :func:`result_columns`). What this writes equals :func:`render` of the same results.
    """

    def __init__(
        self,
        fmt: str,
        write: Callable[[str], None],
        *,
        paths: Sequence[str] = (),
        columns: Sequence[str] = CSV_COLUMNS,
        positive_label: str = "PNEUMONIA",
        pattern_display: dict[str, str] | None = None,
    ):
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
        self.fmt, self._write, self.positive_label = fmt, write, positive_label
        self.columns = list(columns)
        self.pattern_display = pattern_display
        self.results: list[Result] = []
        self._width = _path_width(paths) if paths else 0
        if fmt == "table" and paths:
            write(f"{'IMAGE':<{self._width}}  RESULT\n")
        elif fmt == "csv":
            write(csv_line(self.columns))

    def add(self, result: Result) -> None:
        self.results.append(result)
        if self.fmt == "table" and self._width:
            self._write("\n".join(_row("", result.path, self._width, advice(result, self.positive_label, self.pattern_display))) + "\n")
        elif self.fmt == "jsonl":
            self._write(json.dumps(result.to_dict()) + "\n")
        elif self.fmt == "csv":
            row = flatten(result.to_dict())
            self._write(csv_line([row.get(name) for name in self.columns]))

    def finish(self) -> None:
        if self.fmt == "json":
            self._write(format_json(self.results))
        elif self.fmt == "table":
            self._write(_table_footer(self.results, self.positive_label) if self._width else "No images to screen.\n")


def _table_footer(results: list[Result], positive_label: str) -> str:
    lines = ["", summary_line(Summary.of(results, positive_label))]
    versions = sorted({r.model_version for r in results if r.model_version})
    thresholds = sorted({_threshold_words(r) for r in results if r.threshold is not None})
    if versions and thresholds:
        lines.append(f"Model {', '.join(versions)}, threshold {', '.join(thresholds)}. " + DISCLAIMER)
    return "\n".join(lines) + "\n"


def _collect(fmt: str, results: list[Result], positive_label: str, pattern_display: dict[str, str] | None = None) -> str:
    parts: list[str] = []
    columns = CSV_COLUMNS
    if fmt == "csv":
        rows = [flatten(r.to_dict()) for r in results]
        present = {key for row in rows for key in row}
        fixed = _with_pattern(CSV_COLUMNS, bool(present & set(PATTERN_COLUMNS)))
        columns = (*fixed, *sorted(present - set(fixed)))
    stream = ResultStream(
        fmt, parts.append, paths=[r.path for r in results], columns=columns, positive_label=positive_label,
        pattern_display=pattern_display,
    )
    for result in results:
        stream.add(result)
    stream.finish()
    return "".join(parts)


def result_columns(*, dicom: bool, with_ids: bool, heatmap: bool, pattern: bool = False) -> tuple[str, ...]:
    """The CSV header for a run, fixed before its first result (a stream cannot add columns
    later): :data:`CSV_COLUMNS`, then the extra fields a result of this run can carry, sorted
    as :func:`csv_text` sorts them: DICOM header fields if any input may be DICOM, ``heatmap``
    with ``--heatmap``; :data:`PATTERN_COLUMNS` right after the fixed ones for a pattern model.
    Columns a run's results leave empty stay empty."""
    from edge_app.dicom import info_keys

    extra = set()
    if dicom:
        extra |= {f"dicom.{key}" for key in info_keys(with_ids)}
    if heatmap:
        extra.add("heatmap")
    return (*_with_pattern(CSV_COLUMNS, pattern), *sorted(extra))


def format_json(results: list[Result]) -> str:
    return json.dumps([r.to_dict() for r in results], indent=2) + "\n"


def format_jsonl(results: list[Result]) -> str:
    return _collect("jsonl", results, "PNEUMONIA")


def flatten(record: dict, prefix: str = "", *, sort_keys: bool = False) -> dict:
    """``record`` with nested dicts spread into dotted keys (``{"dicom": {"modality": ..}}``
    becomes ``{"dicom.modality": ..}``), one CSV column (or ``info`` line) each; an empty dict
    stays a value. ``sort_keys`` orders the keys at every level (``pneumoscan info``)."""
    out = {}
    for key in sorted(record) if sort_keys else record:
        value = record[key]
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}.", sort_keys=sort_keys))
        else:
            out[f"{prefix}{key}"] = value
    return out


def csv_text(records: list[dict], columns: Sequence[str]) -> str:
    """``records`` as CSV with nested fields as dotted columns (:func:`flatten`): ``columns``
    first, in order, then every other key any record has, sorted."""
    rows = [flatten(record) for record in records]
    present = {key for row in rows for key in row}
    columns = _with_pattern(columns, bool(present & set(PATTERN_COLUMNS)))
    extra = sorted(present - set(columns))
    fields = [*columns, *extra]
    return csv_line(fields) + "".join(csv_line([row.get(name) for name in fields]) for row in rows)


def csv_line(values: Sequence) -> str:
    """One CSV record ending in ``\\n``; a field holding a line break, a quote or a comma is
    quoted. (Written with ``\\r\\n`` as the csv module's terminator, then ended in ``\\n``: with a
    ``\\n`` terminator the module leaves a lone ``\\r`` unquoted, which a spreadsheet reads as a new
    row, so a crafted file name could forge one.)"""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(["" if v is None else v for v in values])
    return buffer.getvalue()[:-2] + "\n"


def format_csv(results: list[Result]) -> str:
    return _collect("csv", results, "PNEUMONIA")


def render(
    results: list[Result], fmt: str, positive_label: str = "PNEUMONIA", pattern_display: dict[str, str] | None = None
) -> str:
    """``results`` as text in format ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "table":
        return format_table(results, positive_label, pattern_display)
    if fmt == "json":
        return format_json(results)
    if fmt == "jsonl":
        return format_jsonl(results)
    if fmt == "csv":
        return format_csv(results)
    raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")


# --- the audit log (``pneumoscan history``) ---------------------------------------------------


def local_time(stamp: str) -> str:
    """A stored UTC timestamp in local time, ISO-8601 with offset, to the second."""
    return datetime.fromisoformat(stamp).astimezone().isoformat(timespec="seconds")


def log_record(entry: LogEntry) -> dict:
    """One logged film as a flat record: exactly its result's :meth:`Result.to_dict`, then
    :data:`LOG_COLUMNS` (``created_at`` in local time). The model version is kept for a failed
    film too: the log records each image once per model."""
    return {
        **entry.result.to_dict(),
        "model_version": entry.model_version,
        "status": entry.status,
        "created_at": local_time(entry.created_at),
        "sha256": entry.sha256,
        "size": entry.size,
    }


def _outcome(entry: LogEntry) -> str:
    if entry.status == "pending":
        return "not finished: being screened, or interrupted (a watch completes it while the file is in the inbox)"
    if entry.status == "error":
        return f"could not screen: {entry.result.error}"
    pattern = f", pattern {entry.result.pattern} {entry.result.pattern_score}/100" if entry.result.pattern else ""
    return f"{entry.result.label}{' (uncertain)' if entry.result.uncertain else ''}{pattern}"


def format_log_table(entries: list[LogEntry]) -> str:
    if not entries:
        return "No results recorded in this period.\n"
    width = _path_width([e.result.path for e in entries])
    model_width = max(5, *(len(e.model_version) for e in entries))
    lines = [f"{'WHEN':<16}  {'IMAGE':<{width}}  SCORE  {'MODEL':<{model_width}}  RESULT"]
    for entry in entries:
        when = local_time(entry.created_at)[:16].replace("T", " ")
        score = "" if entry.result.score is None else str(entry.result.score)
        after = f"{score:>5}  {entry.model_version:<{model_width}}  {_outcome(entry)}"
        lines += _row(f"{when:<16}  ", entry.result.path, width, after)
    lines += ["", f"{len(entries)} image{'s' if len(entries) != 1 else ''}, newest first."]
    return "\n".join(lines) + "\n"


def render_log(entries: list[LogEntry], fmt: str) -> str:
    """Audit-log entries (newest first) as text in format ``fmt`` (one of :data:`LOG_FORMATS`)."""
    if fmt == "table":
        return format_log_table(entries)
    if fmt == "csv":
        return csv_text([log_record(e) for e in entries], (*CSV_COLUMNS, *LOG_COLUMNS))
    if fmt == "json":
        return json.dumps([log_record(e) for e in entries], indent=2) + "\n"
    raise ValueError(f"unknown format {fmt!r}; one of {', '.join(LOG_FORMATS)}")
