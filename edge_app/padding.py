"""The film inside its padding: the borders a scanner, a PACS export or a screenshot add.

The model was trained to ignore framing (train/pipeline.py), so the input gate measures the film,
not its frame: its statistics (:mod:`edge_app.gate`) and its orientation
(:mod:`edge_app.orientation`) are both taken on :func:`content_box`.
"""

from __future__ import annotations

import numpy as np

#: A line at the film's edge (a row or column) is padding, not film, when it is nearly uniform
#: (standard deviation below ``BORDER_STD`` gray levels) or nearly repeats the next line inward
#: (mean absolute difference below ``BORDER_REPEAT``): black, white or edge-repeated borders that
#: a scanner, a PACS export or a letterboxed screenshot add. At most ``MAX_TRIM`` of each side.
#: Edge-repeated lines stay identical after the resize (difference ~0); a smooth synthetic film
#: downscaled from 900 px has neighbouring rows 0.5-1 level apart, so 1.0 trimmed film and 0.25
#: does not. On 400 training films at 128 px, 48 lose a few lines (their own black side borders).
BORDER_STD = 2.0
BORDER_REPEAT = 0.25
MAX_TRIM = 0.3


def _border_lines(lines: np.ndarray) -> int:
    """How many of ``lines`` (outermost first, each a 1-D float array) are padding, with the one
    line the resize blended from padding and film (its edge is the padding's, not the film's)."""
    most = int(MAX_TRIM * len(lines))
    for i in range(most):
        line = lines[i]
        if line.std() >= BORDER_STD and np.abs(line - lines[i + 1]).mean() >= BORDER_REPEAT:
            return min(i + 1, most) if i else 0
    return most


def content_box(img: np.ndarray) -> np.ndarray:
    """The preprocessed film without its padding (:data:`BORDER_STD`), at its own size.

    Why: the model was trained to ignore framing (black or edge-repeated padding, collimation
    bands; train/pipeline.py) and scores padded films well, but statistics of the whole square
    do not ignore it: a 10% black border made a fifth of real films "saturated (too much pure
    black)" or "unlike the training X-rays", and a 25% one all of them. Measuring the gate on the
    film inside the padding refuses what the film is, not how it was framed. It is not resized
    back: upsampling smooths away the fine texture the gate checks for. A film with no padding is
    returned unchanged (the same array).
    """
    x = np.asarray(img)
    height, width = x.shape
    values = x.astype(np.float64)
    top, bottom = _border_lines(values), _border_lines(values[::-1])
    rows = values[top : height - bottom]  # MAX_TRIM per side always leaves 40% of the film
    left, right = _border_lines(rows.T), _border_lines(rows.T[::-1])
    if top == bottom == left == right == 0:
        return x
    return x[top : height - bottom, left : width - right]
