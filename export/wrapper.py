"""One log line when an export starts and one when it ends: time, path and size (or the reason).

Every export format goes through :func:`logged`, so a long batch of exports reads the same way
and a failure says how far it got. The wrapped function returns an object with a ``path``.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Callable


def file_size(path: Path) -> str:
    size = Path(path).stat().st_size
    return f"{size / 1024:.1f} KB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.2f} MB"


def logged(kind: str) -> Callable:
    """Decorate an export function taking a ``log`` keyword (a callable for one-line messages)."""

    def decorate(export: Callable) -> Callable:
        @functools.wraps(export)
        def run(*args, log: Callable[[str], None] = print, **kwargs):
            label = f"{kind} {kwargs.get('quantize', '')}".strip()
            log(f"export {label}: starting")
            start = time.perf_counter()
            try:
                result = export(*args, log=log, **kwargs)
            except Exception as exc:
                log(f"export {label}: failed after {time.perf_counter() - start:.1f} s: {exc}")
                raise
            log(
                f"export {label}: done in {time.perf_counter() - start:.1f} s, "
                f"saved {result.path} ({file_size(result.path)})"
            )
            return result

        return run

    return decorate
