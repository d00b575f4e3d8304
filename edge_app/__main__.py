"""``python -m edge_app`` runs the ``pneumoscan`` command."""

from edge_app.cli import main

main()
