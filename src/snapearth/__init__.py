"""SnapEarth: the Copernicus Sentinel archive, searchable in plain words."""

__version__ = "0.1.0"
