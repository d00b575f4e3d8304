"""Score images into :class:`~edge_app.results.Result` records, one per input, never raising for one.

This is the one way to screen a film, behind ``pneumoscan predict`` and ``pneumoscan watch`` and
for any server: a :class:`Screener` wraps a loaded :class:`~edge_app.classifier.Classifier` and
turns every input into a result (:meth:`Screener.screen` for a path, :meth:`Screener.screen_bytes`
for an upload); ``result.to_dict()`` is exactly what ``predict --format json`` prints for it. An unusable image becomes a result with a one-line ``error``; only a broken model
stops anything, and that happens when the classifier is loaded, before the first image.

Per input, in order: decode once (:func:`edge_app.decoding.decode_file`: PNG, JPEG or DICOM,
with the colourfulness the gate needs and, for a heatmap, the film at its own aspect ratio);
the input gate (:mod:`edge_app.gate`, refusing what is not plausibly a frontal chest film with
``"not a chest X-ray: <reason>"``); one model invocation (score, and the local logit map if a
heatmap is wanted), after which a film that looks mirrored is refused if it scored negative and
carries a ``"caution"`` (:data:`edge_app.results.CAUTION`) if it scored positive; the heatmap file (:mod:`edge_app.heatmap`). DICOM header fields join the
result under ``"dicom"``; patient identifiers only with ``with_ids``.

Images are screened one after another: ``threads`` speeds up the interpreter only. Decoding in a
thread pool was measured on this machine and gained nothing (the GIL-holding parts of Pillow and
numpy dominate a draft-mode JPEG decode), so it is not worth its complexity.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter

from edge_app.classifier import Classifier
from edge_app.contract import check_threshold
from edge_app.decoding import decode_file
from edge_app.gate import GateCheck, GateUnavailable, check_film, stored_gate  # noqa: F401 (re-exported)
from edge_app.heatmap import OVERLAY_MAX_SIDE, HeatmapError, HeatmapWriter
from edge_app.operating_point import OperatingPoint
from edge_app.paths import PathItem
from edge_app.preprocessing import ImageError, ModelInput
from edge_app.results import CAUTION, Result, make_result

#: Prefix of every refusal by the input gate; the reason follows.
NOT_A_CHEST_XRAY = "not a chest X-ray"


@dataclass
class _Decoded:
    """One input after decoding: the film, or why there is none, and what decoding cost."""

    item: PathItem
    film: ModelInput | None
    error: str | None
    seconds: float
    warnings: list[str]


def _reason(exc: BaseException) -> str:
    """A one-line reason for an exception we did not expect from an image."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"unexpected error ({type(exc).__name__}{': ' + text if text else ''})"


class Screener:
    """Screens inputs with one classifier, deciding at ``point`` (an
    :class:`~edge_app.operating_point.OperatingPoint`: a site profile's threshold and band;
    default the model's own); ``threshold`` overrides the threshold, if given.

    ``on_warning(path, message)`` receives the warnings a decoder emits for an image that was
    still usable (e.g. corrupt EXIF), so a caller can show them without them breaking a display.

    ``gate``: refuse inputs that are not plausibly frontal chest films (on by default; raises
    :class:`GateUnavailable` here, before any image, if the model carries no usable statistics).
    ``with_ids``: put DICOM patient name, ID and birth date in results. ``heatmaps``: write an
    overlay per screened image and record its path under ``"heatmap"`` (the model must have the
    map output: :class:`~edge_app.contract.ContractError` here otherwise).
    """

    def __init__(
        self,
        classifier: Classifier,
        threshold: float | None = None,
        on_warning: Callable[[str, str], None] | None = None,
        *,
        gate: bool = True,
        with_ids: bool = False,
        heatmaps: HeatmapWriter | None = None,
        point: OperatingPoint | None = None,
    ):
        self.point = OperatingPoint.of_model(classifier.contract) if point is None else point
        if threshold is not None:
            try:
                self.point = self.point.with_threshold(check_threshold(threshold))
            except ValueError as exc:
                raise ValueError(f"threshold {exc}") from None
        self.classifier = classifier
        self.on_warning = on_warning
        self.with_ids = bool(with_ids)
        self.gate = stored_gate(classifier.contract) if gate else None
        if heatmaps is not None:
            classifier.require_heatmap()
        self.heatmaps = heatmaps

    def _decode(self, item: PathItem) -> _Decoded:
        if item.error is not None:
            return _Decoded(item, None, item.error, 0.0, [])
        start = perf_counter()
        film = error = None
        display_side = OVERLAY_MAX_SIDE if self.heatmaps is not None else None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # Only what the decoder says about this image; ResourceWarnings arrive at garbage
            # collection, long after (and about) some other file.
            warnings.simplefilter("ignore", ResourceWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                film = decode_file(
                    item.source, self.classifier.preprocess, with_ids=self.with_ids, display_side=display_side
                )
            except ImageError as exc:
                error = str(exc)
            except MemoryError:
                error = "not enough memory to decode this image"
            except OSError as exc:
                error = f"cannot read file: {exc.strerror or exc}"
            except Exception as exc:  # noqa: BLE001 - one odd file must never stop a batch
                error = _reason(exc)
        # A warning from pydicom may quote a header value (a patient's name): never passed on.
        messages = [
            str(w.message).splitlines()[0]
            for w in caught
            if str(w.message) and "pydicom" not in (w.filename or "")
        ]
        return _Decoded(item, film, error, perf_counter() - start, messages)

    def _score(self, decoded: _Decoded) -> Result:
        for message in decoded.warnings:
            if self.on_warning is not None:
                self.on_warning(decoded.item.path, message)
        path, film = decoded.item.path, decoded.film
        if decoded.error is not None:
            return Result(path=path, error=decoded.error)
        extra = {"dicom": film.info} if film.kind == "dicom" else {}
        start = perf_counter()
        local_map = None
        try:
            check = check_film(film.gate_view, film.colourfulness, self.gate, film.shape) if self.gate is not None else GateCheck(None)
            if check.refusal is not None:
                return Result(path=path, error=f"{NOT_A_CHEST_XRAY}: {check.refusal}", extra=extra)
            reading = self.classifier.read(film.pixels, with_map=self.heatmaps is not None, threshold=self.point.threshold)
            probability, local_map = reading.probability, reading.local_map
            # A film that looks mirrored or is asymmetric: refused if negative, screened with a
            # caution if positive (edge_app/gate.py says why).
            refused, caution = check.after_score(probability < self.point.threshold)
            if refused is not None:
                return Result(path=path, error=f"{NOT_A_CHEST_XRAY}: {refused}", extra=extra)
            if caution is not None:
                extra[CAUTION] = caution
                if self.on_warning is not None:
                    self.on_warning(path, caution)
        except Exception as exc:  # noqa: BLE001
            return Result(path=path, error=_reason(exc), extra=extra)
        latency_ms = 1000.0 * (decoded.seconds + perf_counter() - start)
        if local_map is not None:
            # The score stands without its picture: a full disk costs the heatmap, not the result.
            try:
                written = self.heatmaps.write(decoded.item.source, film.display, local_map, self.point.threshold)
                extra["heatmap"] = str(written)
            except HeatmapError as exc:
                extra["heatmap"] = None
                if self.on_warning is not None:
                    self.on_warning(path, str(exc))
        result = make_result(
            path, probability, self.classifier.contract, latency_ms=latency_ms, point=self.point, pattern=reading.pattern
        )
        result.extra.update(extra)
        return result

    def screen(self, item: PathItem | str | os.PathLike) -> Result:
        """The result for one input file: a path or a :class:`~edge_app.paths.PathItem`.

        Never raises for a bad image (the result carries a one-line ``error``); its
        :meth:`~edge_app.results.Result.to_dict` is what ``predict --format json`` prints.
        """
        if not isinstance(item, PathItem):
            item = PathItem(os.fspath(item))
        return self._score(self._decode(item))

    def screen_bytes(self, data: bytes, name: str) -> Result:
        """The result for a file received as bytes (an upload, a DICOM C-STORE), reported as
        ``name``. The bytes are decoded from a private temporary file (removed afterwards) under
        ``name``'s base name, so the suffix picks the decoder as it would on disk; a heatmap, if
        written, is named after ``name`` too."""
        base = Path(name).name or "upload"
        with tempfile.TemporaryDirectory(prefix="pneumoscan-") as folder:
            path = Path(folder) / base
            path.write_bytes(data)
            result = self.screen(path)
        result.path = name
        return result

    def screen_all(self, items: Iterable[PathItem | str]) -> Iterator[Result]:
        """Results for ``items``, lazily and in their order."""
        for item in items:
            yield self.screen(item)


@dataclass(frozen=True)
class Summary:
    """Counts for the last line of the table and for the exit code."""

    total: int
    likely: int
    uncertain: int
    clear: int
    failed: int

    @classmethod
    def of(cls, results: list[Result], positive_label: str = "PNEUMONIA") -> "Summary":
        ok = [r for r in results if r.ok]
        uncertain = sum(1 for r in ok if r.uncertain)
        likely = sum(1 for r in ok if not r.uncertain and r.label == positive_label)
        return cls(
            total=len(results),
            likely=likely,
            uncertain=uncertain,
            clear=len(ok) - likely - uncertain,
            failed=len(results) - len(ok),
        )
