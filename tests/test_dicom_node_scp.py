"""The SCP's rules without a network: who is let in, which datasets are acknowledged, which
transfer syntaxes are offered."""

from __future__ import annotations

import pytest

from dicom_node_helpers import make_film
from edge_app.dicom_node.scp import (
    CANNOT_UNDERSTAND,
    DOES_NOT_MATCH_SOP_CLASS,
    UNCOMPRESSED,
    AccessPolicy,
    check_dataset,
    decodable_syntaxes,
)

EXPLICIT = "1.2.840.10008.1.2.1"


def test_peers_are_matched_by_address_or_network_and_anyone_without_a_list():
    assert AccessPolicy().peer_allowed("203.0.113.9")
    policy = AccessPolicy.parse(peers=["192.168.1.0/24", "10.0.0.7"])
    assert policy.peer_allowed("192.168.1.44") and policy.peer_allowed("10.0.0.7")
    assert policy.peer_allowed("::ffff:192.168.1.44")  # IPv4 seen through an IPv6 socket
    assert not policy.peer_allowed("10.0.0.8") and not policy.peer_allowed("not an address")
    with pytest.raises(ValueError, match="--allow-peer 'xray-room'"):
        AccessPolicy.parse(peers=["xray-room"])
    with pytest.raises(ValueError):
        AccessPolicy.parse(ae_titles=["A" * 17])


def test_a_whole_film_is_acknowledged():
    film = make_film(1)
    assert check_dataset(film, film.SOPClassUID, film.SOPInstanceUID, EXPLICIT) is None


@pytest.mark.parametrize(
    "spoil, status, reason",
    [
        (lambda ds: delattr(ds, "StudyInstanceUID"), DOES_NOT_MATCH_SOP_CLASS, "it has no StudyInstanceUID"),
        (lambda ds: delattr(ds, "PixelData"), DOES_NOT_MATCH_SOP_CLASS, "it has no PixelData"),
        (lambda ds: setattr(ds, "SOPClassUID", "1.2.840.10008.5.1.4.1.1.2"), DOES_NOT_MATCH_SOP_CLASS, "SOP Class UID differs"),
        (lambda ds: setattr(ds, "PixelData", ds.PixelData[:-2]), CANNOT_UNDERSTAND, "pixel data is truncated"),
    ],
)
def test_what_cannot_make_a_result_is_refused_naming_the_attribute_not_its_value(spoil, status, reason):
    film = make_film(1)
    sop_class, sop_instance = film.SOPClassUID, film.SOPInstanceUID
    spoil(film)
    got_status, said = check_dataset(film, sop_class, sop_instance, EXPLICIT)
    assert got_status == status and reason in said
    assert "Doe" not in said


def test_every_uncompressed_syntax_is_offered_and_the_installed_decoders_add_the_rest():
    offered = decodable_syntaxes()
    assert UNCOMPRESSED <= set(offered)
    assert offered[0] == EXPLICIT
    pytest.importorskip("pylibjpeg")
    assert {"1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.5"} <= set(offered)
