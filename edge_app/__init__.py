"""pneumoscan on the clinic device: offline chest X-ray screening with a TFLite model.

Screening one film, for any caller (``pneumoscan predict`` and ``watch`` use exactly this; a web
server or a DICOM node should too)::

    from edge_app.model_file import load_classifier
    from edge_app.screening import Screener

    screener = Screener(load_classifier())         # the bundled model; gate on, as predict
    result = screener.screen("film.jpeg")          # never raises for a bad image
    result = screener.screen_bytes(data, "upload.dcm")
    result.to_dict()                               # exactly what `predict --format json` prints

To record it in the audit log exactly once per image content and model (``watch``'s rule):
:func:`edge_app.audit_log.screen_file_once` or :func:`edge_app.audit_log.record_screening`.

The modules, one concern each:

- reading films: :mod:`edge_app.preprocessing` (the one definition of decode -> grayscale ->
  resize -> normalise, and :class:`~edge_app.preprocessing.ModelInput`, the one decoded-film
  type), :mod:`edge_app.dicom` (DICOM's display chain), :mod:`edge_app.decoding` (which reader a
  file needs), :mod:`edge_app.paths` (finding the files a user's PATHs name);
- the model: :mod:`edge_app.contract` (the metadata a model carries, parsed once into
  :class:`~edge_app.contract.ModelContract`; a pattern model's ``heads`` section into
  :class:`~edge_app.contract.PatternHead`), :mod:`edge_app.runtime` (which TFLite
  interpreter), :mod:`edge_app.classifier` (inference only; :meth:`Classifier.read
  <edge_app.classifier.Classifier.read>` is all one invocation says), :mod:`edge_app.model_file`
  (which model file);
- screening: :mod:`edge_app.gate` (is it a chest film? its statistics, with
  :mod:`edge_app.orientation` for turned and mirrored films and :mod:`edge_app.padding` for the
  film inside its borders), :mod:`edge_app.heatmap`,
  :mod:`edge_app.results` (:class:`~edge_app.results.Result`), :mod:`edge_app.screening`;
- output and record: :mod:`edge_app.formatting` (every table, JSON and CSV),
  :mod:`edge_app.audit_log` (+ :mod:`edge_app.audit_schema`, :mod:`edge_app.liveness`),
  :mod:`edge_app.watch` (the inbox loop);
- a site's own operating point: :mod:`edge_app.thresholds` (the threshold rule and the uncertain
  band, shared with export), :mod:`edge_app.intervals` (Wilson, DeLong, binomial ranges),
  :mod:`edge_app.labelled_set` (a site's labelled films), :mod:`edge_app.calibration` (the table
  and the recommendation), :mod:`edge_app.calibration_plots`, :mod:`edge_app.site_profile`
  (``site.json``), :mod:`edge_app.operating_point` (which threshold a result was decided with),
  :mod:`edge_app.drift` (the audit log by day against calibration);
- the command: :mod:`edge_app.cli` (the app: predict, info, bench), :mod:`edge_app.watch_cli`
  (watch, history), :mod:`edge_app.calibrate_cli` (calibrate), :mod:`edge_app.cli_common` (what
  they share), :mod:`edge_app.bench`;
- the DICOM node (``dicom-node``, the ``[dicom-node]`` extra): :mod:`edge_app.dicom_node`, a
  subpackage that receives films over the network and screens them with the calls above.
- the web page: :mod:`edge_app.serve` (``pneumoscan serve``, the ``[serve]`` extra; imports
  Flask only when the command runs).

The dependency rule (checked by ``tests/test_dependencies.py``, both ways): nothing in this package
imports TensorFlow, Keras, ``train`` or ``export``: the device has none of them. The arrows point
the other way, and only to the modules in :data:`USED_BY_TRAINING`: training and export use
:mod:`edge_app.preprocessing` and :mod:`edge_app.contract` so that the device sees exactly what
training saw, :mod:`edge_app.gate` to fit the input gate's ranges, and :mod:`edge_app.classifier`
and :mod:`edge_app.runtime` so that parity and evaluation of a ``.tflite`` go through the device's
own inference, and :mod:`edge_app.thresholds` so that the uncertain band export stores and the one
``pneumoscan calibrate`` sets for a site follow one rule; ``export`` stamps
``edge_app.__version__`` into the contract.
"""

#: The only modules ``train`` and ``export`` may import from this package (``edge_app`` itself
#: for ``__version__``).
USED_BY_TRAINING = (
    "edge_app",
    "edge_app.preprocessing",
    "edge_app.contract",
    "edge_app.gate",
    "edge_app.classifier",
    "edge_app.runtime",
    "edge_app.thresholds",
)


def __getattr__(name: str) -> str:
    # Looked up on first use: importlib.metadata costs ~30 ms of every `pneumoscan` cold start.
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("pneumoscan")
    except PackageNotFoundError:  # running from a source tree that was never installed
        value = "0.0.0+source"
    globals()["__version__"] = value
    return value
