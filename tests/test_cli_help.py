"""The command lists of the three command-line apps (`pneumoscan`, `pneumoscan-train`,
`pneumoscan-export`): one row per command.

Typer lists each command with its docstring's first paragraph and keeps that paragraph's line
breaks, so a summary wrapped in the source broke mid-sentence in `--help`, whatever the terminal
width. Each command's docstring therefore opens with a one-line summary and a blank line.
"""

from __future__ import annotations

import importlib

import pytest
import typer.main
from typer.testing import CliRunner


@pytest.mark.parametrize("module", ["edge_app.cli", "train.cli", "export.cli"])
def test_command_list_gives_each_command_one_row(module):
    if module != "edge_app.cli":
        pytest.importorskip("tensorflow")  # the training side's CLIs import it
    app = importlib.import_module(module).app
    done = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
    assert done.exit_code == 0, done.output
    rows = done.output.split("Commands")[1].split("╰")[0].splitlines()[1:]
    names = [row.strip("│ ").split(" ")[0] for row in rows]
    assert sorted(names) == sorted(typer.main.get_command(app).commands), done.output
