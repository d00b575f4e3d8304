"""Score images into :class:`~edge_app.results.Result` records, one per input, never raising for one.

This is the library behind ``pneumoscan predict`` (and what a folder watcher or a GUI would call):
a :class:`Screener` wraps a loaded :class:`~edge_app.classifier.Classifier` and turns every input
into a result. An unusable image becomes a result with a one-line ``error``; only a broken model
stops anything, and that happens when the classifier is loaded, before the first image.

Images are screened one after another: ``threads`` speeds up the interpreter only. Decoding in a
thread pool was measured on this machine and gained nothing (the GIL-holding parts of Pillow and
numpy dominate a draft-mode JPEG decode), so it is not worth its complexity.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from time import perf_counter

import numpy as np

from edge_app.classifier import Classifier
from edge_app.inputs import InputItem
from edge_app.preprocessing import ImageError, preprocess_file
from edge_app.results import Result, make_result


@dataclass
class _Prepared:
    item: InputItem
    image: np.ndarray | None
    error: str | None
    seconds: float
    warnings: list[str]


def _reason(exc: BaseException) -> str:
    """A one-line reason for an exception we did not expect from an image."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"unexpected error ({type(exc).__name__}{': ' + text if text else ''})"


class Screener:
    """Screens inputs with one classifier. ``threshold`` overrides the model's own, if given.

    ``on_warning(path, message)`` receives the warnings a decoder emits for an image that was
    still usable (e.g. corrupt EXIF), so a caller can show them without them breaking a display.
    """

    def __init__(
        self,
        classifier: Classifier,
        threshold: float | None = None,
        on_warning: Callable[[str, str], None] | None = None,
    ):
        if threshold is not None and not 0.0 < float(threshold) < 1.0:
            raise ValueError(f"threshold must be between 0 and 1 (exclusive), got {threshold}")
        self.classifier = classifier
        self.threshold = None if threshold is None else float(threshold)
        self.on_warning = on_warning

    def _prepare(self, item: InputItem) -> _Prepared:
        if item.error is not None:
            return _Prepared(item, None, item.error, 0.0, [])
        start = perf_counter()
        image = error = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # Only what the decoder says about this image; ResourceWarnings arrive at garbage
            # collection, long after (and about) some other file.
            warnings.simplefilter("ignore", ResourceWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                image = preprocess_file(item.source, self.classifier.preprocess)
            except ImageError as exc:
                error = str(exc)
            except MemoryError:
                error = "not enough memory to decode this image"
            except OSError as exc:
                error = f"cannot read file: {exc.strerror or exc}"
            except Exception as exc:  # noqa: BLE001 - one odd file must never stop a batch
                error = _reason(exc)
        messages = [str(w.message).splitlines()[0] for w in caught if str(w.message)]
        return _Prepared(item, image, error, perf_counter() - start, messages)

    def _score(self, prepared: _Prepared) -> Result:
        for message in prepared.warnings:
            if self.on_warning is not None:
                self.on_warning(prepared.item.path, message)
        if prepared.error is not None:
            return Result(path=prepared.item.path, error=prepared.error)
        start = perf_counter()
        try:
            probability = self.classifier.classify(prepared.image)
        except Exception as exc:  # noqa: BLE001
            return Result(path=prepared.item.path, error=_reason(exc))
        latency_ms = 1000.0 * (prepared.seconds + perf_counter() - start)
        return make_result(
            prepared.item.path, probability, self.classifier.contract, self.threshold, latency_ms
        )

    def screen(self, item: InputItem | str) -> Result:
        """The result for one input: a path string or an :class:`InputItem`."""
        if not isinstance(item, InputItem):
            item = InputItem(str(item))
        return self._score(self._prepare(item))

    def screen_all(self, items: Iterable[InputItem | str]) -> Iterator[Result]:
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
