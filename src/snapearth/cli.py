"""`snapearth ...` — the command line; each concept contributes its own commands."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="snapearth",
    help="SnapEarth: the Copernicus Sentinel archive, searchable in plain words.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# Each module exposes ``register(app: typer.Typer) -> None`` adding its commands or sub-apps.
COMMAND_MODULES = [
    "snapearth.api.cli",
    "snapearth.catalog.cli",
    "snapearth.signature.cli",
    "snapearth.earthsearch.cli",
    "snapearth.sources.cli",
    "snapearth.sources.sample.cli",
    "snapearth.processing.cli",
]


def _register_all() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)


def main() -> None:
    _register_all()
    app()


if __name__ == "__main__":
    main()
