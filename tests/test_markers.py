"""Laterality letters and text lines: rendered masks, the bank the pipeline uses, pasting."""

from __future__ import annotations

import numpy as np
import pytest

from train.markers import LETTERS, STYLES, glyph_bank, paste, render, resized


@pytest.mark.parametrize("style", STYLES)
def test_render_gives_a_trimmed_ink_mask(style):
    mask = render("R", style)
    assert mask.dtype == np.float32 and 0.0 <= mask.min() and mask.max() == pytest.approx(1.0)
    # trimmed to the ink: every border row and column holds some ink
    assert mask[0].max() > 0.05 and mask[-1].max() > 0.05 and mask[:, 0].max() > 0.05 and mask[:, -1].max() > 0.05
    with pytest.raises(ValueError, match="style"):
        render("R", "shadowed")


def test_letters_differ_and_the_inverted_style_is_mostly_ink():
    assert not np.array_equal(render("R"), render("L"))
    assert render("R", "inverted").mean() > 0.5 > render("R").mean()


def test_glyph_bank_holds_every_letter_style_on_one_canvas():
    bank, sizes = glyph_bank("letter")
    assert len(bank) == len(LETTERS) * len(STYLES) * 2 == len(sizes)
    for mask, (h, w) in zip(bank, sizes):
        assert mask[:h, :w].max() > 0.5 and mask[h:].max(initial=0) == 0 and mask[:, w:].max(initial=0) == 0
    text, _ = glyph_bank("text")
    assert text.shape[2] > text.shape[1]  # lines are wider than tall


def test_paste_blends_the_mask_into_the_chosen_corner_only():
    film = np.full((100, 100), 50.0, np.float32)
    mask = resized(render("R"), 15)
    assert mask.shape[0] == 15
    out = paste(film, mask, "tl", 255.0, margin=0.05)
    assert out[:25, :25].max() > 200 and np.all(out[30:, :] == 50.0) and np.all(out[:, 40:] == 50.0)
    out = paste(film, mask, "br", 0.0, margin=0.05)
    assert out[75:, 75:].min() < 10 and np.all(out[:70, :] == 50.0)
    assert np.all(film == 50.0)  # the input is not changed


SYSTEM_BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf"


@pytest.mark.skipif(not __import__("os").path.exists(SYSTEM_BOLD), reason="no DejaVu fonts on this machine")
def test_a_font_file_draws_a_different_glyph_than_the_bundled_font():
    bundled, serif = render("R"), render("R", font_file=SYSTEM_BOLD)
    assert serif.max() == pytest.approx(1.0, abs=0.05)
    h = min(bundled.shape[0], serif.shape[0])
    # the same letter at the same height, in another shape: a bold serif carries more ink per row
    assert abs(resized(serif, h).mean() - resized(bundled, h).mean()) > 0.02
