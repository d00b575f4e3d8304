"""Result records and the nurse-readable line."""

from __future__ import annotations

from edge_app.contract import ModelContract
from edge_app.preprocessing import PreprocessSpec
from edge_helpers import minimal_contract
from edge_app.results import Result, advice, make_result, pattern_shown

CONTRACT = ModelContract(
    labels=("NORMAL", "PNEUMONIA"),
    preprocess=PreprocessSpec(64),
    channels=1,
    input_dtype="uint8",
    output="logit",
    threshold=0.5,
    version="v7",
    uncertain_band=(0.4, 0.6),
)


def test_make_result_labels_at_the_threshold():
    assert make_result("a", 0.5, CONTRACT).label == "PNEUMONIA"
    assert make_result("a", 0.4999, CONTRACT).label == "NORMAL"
    low = make_result("a", 0.3, CONTRACT, threshold=0.25)
    assert low.label == "PNEUMONIA" and low.threshold == 0.25


def test_make_result_fields():
    r = make_result("scans/a.jpeg", 0.87654321, CONTRACT, latency_ms=12.3456)
    assert r.to_dict() == {
        "path": "scans/a.jpeg",
        "probability": 0.876543,
        "score": 88,
        "label": "PNEUMONIA",
        "uncertain": False,
        "threshold": 0.5,
        "model_version": "v7",
        "latency_ms": 12.35,
        "threshold_source": "model",
        "site_profile": None,
    }
    assert r.ok


def test_a_site_operating_point_decides_and_is_named():
    from edge_app.operating_point import OperatingPoint

    point = OperatingPoint(0.7, (0.65, 0.8), "site", "feedfacefeedface")
    r = make_result("a", 0.66, CONTRACT, point=point)
    assert (r.label, r.uncertain, r.threshold) == ("NORMAL", True, 0.7)
    assert (r.threshold_source, r.site_profile) == ("site", "feedfacefeedface")
    forced = make_result("a", 0.66, CONTRACT, threshold=0.6, point=point)
    assert (forced.label, forced.threshold_source, forced.site_profile) == ("PNEUMONIA", "option", None)


def test_uncertain_band_is_inclusive():
    assert make_result("a", 0.4, CONTRACT).uncertain
    assert make_result("a", 0.6, CONTRACT).uncertain
    assert not make_result("a", 0.61, CONTRACT).uncertain
    no_band = ModelContract(**{**CONTRACT.__dict__, "uncertain_band": None})
    assert not make_result("a", 0.5, no_band).uncertain


def test_failed_result_has_only_path_and_error():
    r = Result("x.jpeg", error="empty file")
    assert not r.ok
    assert r.to_dict() == {"path": "x.jpeg", "error": "empty file"}


def test_extra_fields_are_merged():
    r = Result("x.jpeg", 0.1, 10, "NORMAL", False, 0.5, "v", 1.0, extra={"heatmap": "h.png"})
    assert r.to_dict()["heatmap"] == "h.png" and "extra" not in r.to_dict()


def test_advice_is_never_a_diagnosis():
    lines = [
        advice(make_result("a", 0.9, CONTRACT)),
        advice(make_result("a", 0.5, CONTRACT)),
        advice(make_result("a", 0.1, CONTRACT)),
        advice(Result("a", error="empty file")),
    ]
    # The wording, em dashes included.
    assert lines[0] == "Signs of pneumonia likely (score 90/100) \u2014 refer for clinical review"
    assert lines[1] == "Uncertain \u2014 needs review by a clinician (score 50/100)"
    assert lines[2] == "No signs of pneumonia found (score 10/100) \u2014 use clinical judgement"
    assert lines[3] == "Could not screen: empty file"
    for line in lines:
        assert "diagnos" not in line.lower() and "has pneumonia" not in line.lower()


def test_uncertain_wins_on_either_side_of_the_threshold():
    below, above = make_result("a", 0.41, CONTRACT), make_result("a", 0.59, CONTRACT)
    assert below.label == "NORMAL" and above.label == "PNEUMONIA"
    assert advice(below).startswith("Uncertain") and advice(above).startswith("Uncertain")
    assert below.to_dict()["uncertain"] is True and below.to_dict()["score"] == 41


def test_advice_uses_the_models_positive_label():
    contract = ModelContract(**{**CONTRACT.__dict__, "labels": ("clear", "opacity")})
    assert advice(make_result("a", 0.9, contract), "opacity").startswith("Signs of pneumonia likely")
    assert advice(make_result("a", 0.1, contract), "opacity").startswith("No signs")


# --- a model with a pattern head -------------------------------------------------------------

PATTERN_CONTRACT = ModelContract.from_dict(
    {
        **minimal_contract(),
        "uncertain_band": [0.45, 0.55],
        "version": "v8",
        "outputs": {"logit": {"name": "a", "shape": [1, 1]}, "pattern": {"name": "b", "shape": [1, 1]}},
        "heads": {
            "pattern": {
                "output": "logit",
                "tensor": "pattern",
                "labels": ["bacterial", "viral"],
                "applies_when": "screening positive",
            }
        },
    }
)


def test_pattern_fields_name_the_likelier_pattern_over_the_threshold():
    r = make_result("a.jpeg", 0.9, PATTERN_CONTRACT, pattern=(0.28, 0.72))
    assert r.to_dict()["pattern"] == "viral" and r.to_dict()["pattern_score"] == 72
    r = make_result("a.jpeg", 0.9, PATTERN_CONTRACT, pattern=(0.61, 0.39))
    assert (r.pattern, r.pattern_score) == ("bacterial", 61)
    assert advice(r).endswith("refer for clinical review; pattern more like bacterial pneumonia (61/100)")


def test_no_pattern_under_the_threshold_even_if_one_was_read():
    r = make_result("a.jpeg", 0.2, PATTERN_CONTRACT, pattern=(0.1, 0.9))
    assert r.to_dict()["pattern"] is None and r.to_dict()["pattern_score"] is None
    assert "pattern" not in advice(r)
    # a lowered threshold makes the same film positive, and then its pattern is shown
    assert make_result("a.jpeg", 0.2, PATTERN_CONTRACT, threshold=0.1, pattern=(0.1, 0.9)).pattern == "viral"


def test_uncertain_positive_shows_its_pattern_and_contract_words_are_used():
    r = make_result("a.jpeg", 0.5, PATTERN_CONTRACT, pattern=(0.3, 0.7))
    assert r.uncertain
    line = advice(r, pattern_display={"viral": "viral-like pattern"})
    assert line.startswith("Uncertain") and line.endswith("; pattern more like viral-like pattern (70/100)")


def test_a_pattern_is_shown_in_the_contract_s_words_or_as_label_pneumonia():
    r = make_result("a.jpeg", 0.9, PATTERN_CONTRACT, pattern=(0.3, 0.7))
    assert pattern_shown(r) == "viral pneumonia"
    assert pattern_shown(r, {"viral": "viral-like pattern"}) == "viral-like pattern"
    assert pattern_shown(make_result("a.jpeg", 0.1, PATTERN_CONTRACT, pattern=(0.3, 0.7))) is None


def test_two_class_results_have_no_pattern_keys():
    r = make_result("a.jpeg", 0.9, CONTRACT, pattern=(0.3, 0.7))
    assert "pattern" not in r.to_dict() and r.pattern is None
