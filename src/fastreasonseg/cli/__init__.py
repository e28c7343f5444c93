"""The ``fastreasonseg`` command line. Each stage registers its sub-commands from its own module."""

from __future__ import annotations

import typer

from fastreasonseg.cli.ask import ask, segment
from fastreasonseg.cli.common import app, main
from fastreasonseg.cli.data import data_app
from fastreasonseg.cli.eval import eval_app
from fastreasonseg.cli.serve import serve
from fastreasonseg.cli.train import train_app
from fastreasonseg.cli.twin import twin_app

app.command("ask")(ask)
app.command("segment")(segment)
app.command("serve")(serve)
app.add_typer(twin_app, name="twin", help="Build, validate and show digital twins.")
app.add_typer(data_app, name="data", help="Datasets: synthetic scenes and queries.")
app.add_typer(eval_app, name="eval", help="Score predictions and run benchmarks.")
app.add_typer(train_app, name="train", help="Teacher GRPO, chains, student SFT and RL, export.")

__all__ = ["app", "main", "typer"]
