"""``fastreasonseg data synthetic``: write a synthetic train/val/test set of twins and implicit queries."""

from __future__ import annotations

from pathlib import Path

import typer

from fastreasonseg.cli.common import console, fail, progress_bar

data_app = typer.Typer(no_args_is_help=True)


@data_app.command("synthetic")
def synthetic(
    output: Path = typer.Option(..., "-o", "--output", help="Folder for train/val/test.jsonl and manifest.json."),
    seed: int = typer.Option(0, "--seed", help="Random seed (the whole dataset is deterministic given it)."),
    train: int = typer.Option(2000, "--train", min=0, help="Training samples."),
    val: int = typer.Option(200, "--val", min=0, help="Validation samples."),
    test: int = typer.Option(300, "--test", min=0, help="Test samples."),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite existing files."),
) -> None:
    """Generate synthetic scenes with implicit queries, answers and reference rationales."""
    from fastreasonseg.data.synthetic.dataset import write_dataset

    bar = progress_bar("synthetic")
    sizes = {"train": train, "val": val, "test": test}
    try:
        with bar:
            tasks = {split: bar.add_task(split, total=n) for split, n in sizes.items()}
            man = write_dataset(
                output,
                seed=seed,
                train=train,
                val=val,
                test=test,
                force=force,
                progress=lambda split, done: bar.update(tasks[split], completed=done),
            )
    except FileExistsError as exc:
        fail(str(exc))
        return
    sizes = ", ".join(f"{k} {v}" for k, v in man["sizes"].items())
    h = man["heldout"]
    console.print(
        f"wrote {output}: {sizes}; held out {len(h['objects'])} objects, {len(h['uses'])} uses, "
        f"{len(h['traits'])} traits, {len(h['templates'])} phrasings",
        highlight=False,
    )
