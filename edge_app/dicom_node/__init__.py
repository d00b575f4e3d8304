"""``pneumoscan dicom-node``: the X-ray unit sends films over DICOM, results go back to the PACS.

One film's way through the node, each step in its own module:

1. :mod:`.scp` accepts the association (calling AE title and peer address allow-lists) and the
   C-STORE of a CR, DX or Secondary Capture image in a transfer syntax the ``[dicom]`` decoders
   read; a dataset that does not parse gets a failure status, and nothing else happens.
2. :mod:`.storage` writes it under ``--data`` by the SHA-256 of its bytes, fsynced, *before* the
   success status goes back: whatever the unit was told is stored, is.
3. :mod:`.node` screens stored films one at a time, in the same audit log and under the same
   claim protocol as ``pneumoscan watch``: :mod:`.header` refuses laterals and other body parts
   by their header, :class:`edge_app.screening.Screener` does the rest. After a crash the store
   is the to-do list: every stored film the log does not have settled is screened at start.
4. :mod:`.objects` builds, with highdicom, a Secondary Capture (the heatmap with the result line
   burned in, marked as a screening aid) and a Basic Text SR, both in the film's own study, and
   :mod:`.outbox` keeps them on disk until ``--forward`` has them, retrying a destination that is
   down without ever holding up receiving.

pynetdicom and highdicom are the optional ``[dicom-node]`` extra; nothing here is imported by
the rest of ``edge_app``.
"""

INSTALL_HINT = "the DICOM node is not installed: pip install 'pneumoscan[dicom,dicom-node]'"
