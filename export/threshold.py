"""The threshold a converted file ships with: the run's own rule, applied to that file's scores.

Why: the run's rule (:func:`train.fit.pick_threshold`) chose its threshold on the Keras
checkpoint's scores, but the device decides with the converted file, whose scores differ by the
quantisation error (mean |dp| 0.003-0.007 for the int8 files so far). A guarantee that is
exact on one set of scores is then off by a film or two on the other: the int8 file of the ``shiftspec42`` run kept
sensitivity 0.945 under aspect 0.8 at the Keras threshold, under the 0.95 its rule promises on
every shift. The same rule on the file's own clean and shifted validation scores makes the
guarantee the shipped file's, whatever the conversion did.

A threshold that the run's configured rule did not produce (``pneumoscan-train shift --update``
with another rule or target) is kept as it is: re-picking it would silently undo a choice made
by hand. ``keep`` keeps the run's threshold in every case (to compare with older exports).
"""

from __future__ import annotations

import numpy as np

#: The binding set is named after this in a rule's description; it may differ between the
#: checkpoint and the converted file, the rule itself may not.
_BINDING = " (binding:"


def rule_of(description: str) -> str:
    """A threshold rule's description without the set that happened to bind it."""
    return description.split(_BINDING)[0]


def device_threshold(
    run, labels: np.ndarray, scores: np.ndarray, shifted: dict[str, np.ndarray], keep: bool = False
) -> tuple[float, str]:
    """(threshold, rule description) for a file exported from ``run`` (an :class:`export.run.Run`):
    ``scores`` are the file's probabilities on the clean validation films, ``shifted`` its logits
    under every shift perturbation (:func:`train.shift.shift_logits`)."""
    from train.data import DataError
    from train.fit import pick_threshold

    keras = f"the Keras checkpoint's threshold {run.threshold:.4f}"
    if keep:
        return run.threshold, f"{run.threshold_rule}; {keras}, kept as it is (--keep-run-threshold)"
    try:
        threshold, how = pick_threshold(run.config, labels, scores, shifted)
    except DataError:
        return run.threshold, f"{run.threshold_rule}; {keras}, kept: the run's rule is unknown here"
    if rule_of(how) != rule_of(run.threshold_rule):
        return run.threshold, f"{run.threshold_rule}; {keras}, kept: not set by the run's configured rule"
    return threshold, f"{how}; on this file's own scores ({keras})"
