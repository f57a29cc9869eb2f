"""`snapearth sample ...`: build the sample archive, list and check scenarios, generate item metadata at scale."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from snapearth.errors import InvalidInputError, NotFoundError, SnapEarthError
from snapearth.sources.sample.scenario import scenario_text

app = typer.Typer(name="sample", help="The sample archive: simulated Sentinel-1/2 products with ground truth.",
                  no_args_is_help=True)  # fmt: skip


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="sample")


def _fail(exc: SnapEarthError) -> typer.Exit:
    Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {exc.message}", highlight=False, markup=True)
    return typer.Exit(2 if isinstance(exc, InvalidInputError | NotFoundError) else 1)


@app.command()
def build(
    scenario: Annotated[
        str, typer.Option("--scenario", "-s", help="Built-in scenario (demo, test) or a YAML file.")
    ] = "demo",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Archive folder (default: $SNAPEARTH_DATA/sample); replaces one.")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", "-w", help="Worker processes (default: CPU count).")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Build a static STAC catalog of simulated products in DIR/catalog.json and ground truth in DIR/truth/."""
    from snapearth.sources.sample.build import build_archive

    try:
        text, source = scenario_text(scenario)
        if out is None:
            from snapearth.config import Settings

            out = Settings().data / "sample"
        if workers < 0:
            raise InvalidInputError(f"workers: {workers} must be 0 (all CPUs) or more", field="workers")
        n_workers = workers or os.cpu_count() or 1
        started = time.perf_counter()
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            disable=quiet,
        ) as bar:
            task = bar.add_task(f"sample {scenario}", total=None)

            def hook(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            manifest = build_archive(text, out, source=source, workers=n_workers, progress=hook)
    except SnapEarthError as exc:
        raise _fail(exc) from None
    n_s2 = sum(1 for s in manifest["scenes"] if s["collection"] == "sentinel-2-l2a")
    n_s1 = len(manifest["scenes"]) - n_s2
    sys.stdout.write(
        f"{out / 'catalog.json'}: {n_s2} Sentinel-2 L2A + {n_s1} Sentinel-1 GRD products, "
        f"{len(manifest['places'])} places, {len(manifest['events'])} events "
        f"in {time.perf_counter() - started:.1f} s\n"
    )


@app.command()
def scenarios() -> None:
    """List the built-in scenarios."""
    from snapearth.sources.sample.scenario import builtin_scenarios, load_scenario

    for name in builtin_scenarios():
        sc = load_scenario(name)
        sys.stdout.write(f"{name}\t{len(sc.places)} places\t{len(sc.events)} events\t{sc.description}\n")


@app.command()
def check(scenario: Annotated[str, typer.Argument(help="Built-in scenario name or YAML file.")]) -> None:
    """Validate a scenario file; errors name the line and the field."""
    from snapearth.sources.sample.build import plan
    from snapearth.sources.sample.scenario import parse_scenario

    try:
        text, source = scenario_text(scenario)
        sc = parse_scenario(text, source)
    except SnapEarthError as exc:
        raise _fail(exc) from None
    tasks = plan(sc)
    n_s2 = sum(1 for t in tasks if t.collection == "sentinel-2-l2a")
    sys.stdout.write(f"{source}: ok, {len(sc.places)} places, {len(sc.events)} events, "
                     f"{n_s2} Sentinel-2 + {len(tasks) - n_s2} Sentinel-1 products\n")  # fmt: skip


@app.command()
def items(
    count: Annotated[int, typer.Option("--count", "-n", help="How many items.")] = 1000,
    out: Annotated[Path, typer.Option("--out", "-o", help="ndjson file to write.")] = Path("items.ndjson"),
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
) -> None:
    """Sentinel-2 L2A item metadata only (no pixels), at any count, as ndjson (scale benchmarks)."""
    from snapearth.sources.itemgen import write_ndjson

    try:
        if count < 0:
            raise InvalidInputError(f"count: {count} must not be negative", field="count")
        started = time.perf_counter()
        written = write_ndjson(out, count, seed=seed)
    except SnapEarthError as exc:
        raise _fail(exc) from None
    sys.stdout.write(f"{out}: {written} items in {time.perf_counter() - started:.1f} s\n")
