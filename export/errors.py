"""The errors an export reports as one line (the CLI prints them without a traceback)."""

from __future__ import annotations


class ExportError(ValueError):
    """The run or the arguments cannot produce a trustworthy model file; says what to fix."""


class ParityError(ExportError):
    """The converted file does not score like the checkpoint it came from."""
