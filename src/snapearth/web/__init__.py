"""The single-page web UI: sources in ``frontend/`` (bundled with esbuild), built files in ``static/``."""

from snapearth.web.router import install

__all__ = ["install"]
