"""The SnapEarth HTTP API: ``create_app(settings)`` in ``snapearth.api.app``."""
