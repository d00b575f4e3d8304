"""The outbox and its forwarder, against a receiving SCP in this process: a destination that is
down is retried until it is up, a refusal is set aside, nothing is queued twice."""

from __future__ import annotations

import threading

import pytest

from dicom_node_helpers import Receiver, make_film
from ports import free_port
from edge_app.dicom_node.objects import build
from edge_app.dicom_node.outbox import Destination, Forwarder, Outbox, check_ae_title
from edge_app.dicom_node.storage import FilmStore
from edge_app.results import Result


def test_destination_parses_ae_at_host_port():
    assert Destination.parse("PACS@192.168.1.20:104") == Destination("PACS", "192.168.1.20", 104)
    assert str(Destination.parse("ORTHANC@[::1]:4242")) == "ORTHANC@::1:4242"
    for bad in ("PACS", "PACS@host", "@host:104", "PACS@host:0", "PACS@host:http", "A_VERY_LONG_AE_TITLE@h:1"):
        with pytest.raises(ValueError):
            Destination.parse(bad)
    with pytest.raises(ValueError):
        check_ae_title("BACK\\SLASH")


def results(count: int) -> list[tuple[str, dict]]:
    made = []
    for i in range(count):
        result = Result("f.dcm", 0.5, 50, "PNEUMONIA", False, 0.3, "v1")
        objects = build(make_film(i), result, f"{i:064x}", "v1", None)
        made.append((f"{i:016x}", {"sr": objects.sr}))
    return made


def wait(predicate, timeout: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_down_destination_is_retried_until_it_is_up(tmp_path):
    store = FilmStore(tmp_path)
    outbox = Outbox(tmp_path / "outbox", store.tmp)
    port = free_port()
    events: list[tuple[str, str]] = []
    forwarder = Forwarder(outbox, Destination("PACS", "127.0.0.1", port), "PNEUMOSCAN", max_delay=0.2,
                          report=lambda event, detail: events.append((event, detail)))
    thread = threading.Thread(target=forwarder.run, daemon=True)
    thread.start()
    try:
        for film, objects in results(3):
            outbox.put(film, objects)
        wait(lambda: any(event == "waiting" for event, _ in events))
        assert len(outbox.pending()) == 3
        pacs = Receiver(port=port)
        try:
            wait(lambda: len(pacs.received) == 3)
            wait(lambda: not outbox.pending())
            assert len(list(outbox.folders["sent"].iterdir())) == 3
            assert [event for event, _ in events].count("waiting") == 1  # said once per outage
            # Queuing the same result again sends nothing more.
            for film, objects in results(3):
                outbox.put(film, objects)
            assert not outbox.pending()
        finally:
            pacs.stop()
    finally:
        forwarder.stop()
        thread.join(timeout=10)


def test_an_object_the_destination_refuses_is_set_aside(tmp_path):
    store = FilmStore(tmp_path)
    outbox = Outbox(tmp_path / "outbox", store.tmp)
    pacs = Receiver(status=0xA900)
    forwarder = Forwarder(outbox, Destination("PACS", "127.0.0.1", pacs.port), "PNEUMOSCAN", max_delay=0.2)
    thread = threading.Thread(target=forwarder.run, daemon=True)
    thread.start()
    try:
        film, objects = results(1)[0]
        outbox.put(film, objects)
        wait(lambda: len(list(outbox.folders["rejected"].iterdir())) == 1)
        assert not outbox.pending()
    finally:
        forwarder.stop()
        thread.join(timeout=10)
        pacs.stop()


def test_an_object_class_the_destination_does_not_take_is_set_aside(tmp_path):
    """A PACS that takes Secondary Capture but not Basic Text SR: the SR is set aside with the
    reason, the picture is sent."""
    from pynetdicom import AE, evt

    ae = AE(ae_title="PACS")
    ae.add_supported_context("1.2.840.10008.5.1.4.1.1.7")  # Secondary Capture only
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, lambda event: 0x0000)])
    store = FilmStore(tmp_path)
    outbox = Outbox(tmp_path / "outbox", store.tmp)
    events: list[tuple[str, str]] = []
    forwarder = Forwarder(outbox, Destination("PACS", "127.0.0.1", server.server_address[1]), "PNEUMOSCAN",
                          max_delay=0.2, report=lambda event, detail: events.append((event, detail)))
    thread = threading.Thread(target=forwarder.run, daemon=True)
    thread.start()
    try:
        import numpy as np

        result = Result("f.dcm", 0.5, 50, "PNEUMONIA", False, 0.3, "v1")
        objects = build(make_film(1), result, "1" * 64, "v1", np.zeros((64, 64, 3), np.uint8))
        outbox.put("1" * 16, {"sr": objects.sr, "sc": objects.sc})
        wait(lambda: not outbox.pending())
        assert [p.name.split(".")[1] for p in outbox.folders["rejected"].iterdir()] == ["sr"]
        assert [p.name.split(".")[1] for p in outbox.folders["sent"].iterdir()] == ["sc"]
        assert any(event == "rejected" and "does not accept Basic Text SR" in detail for event, detail in events)
    finally:
        forwarder.stop()
        thread.join(timeout=10)
        server.shutdown()
