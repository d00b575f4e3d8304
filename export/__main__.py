"""``python -m export`` is ``pneumoscan-export``."""

from export.cli import main

main()
