"""Settings, read from ``SNAPEARTH_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every tunable of SnapEarth; the app layer reads them, library code takes arguments."""

    model_config = SettingsConfigDict(env_prefix="SNAPEARTH_", extra="ignore")

    data: Path = Field(default=Path("data"), description="Folder holding the embedded catalog, samples, caches.")
    catalog: str | None = Field(default=None, description="Catalog URL: sqlite:///path or postgresql://...")
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = Field(default=None, description="Key protecting the STAC Transactions endpoints.")
    cors_origins: list[str] = Field(default_factory=lambda: ["*"])
    dask_scheduler: str | None = Field(default=None, description="tcp://host:port of an existing Dask scheduler.")
    dask_workers: int = 2
    log_level: str = "INFO"
    public_url: str | None = Field(default=None, description="Base URL the API advertises in links.")

    @property
    def catalog_url(self) -> str:
        if self.catalog:
            return self.catalog
        return f"sqlite:///{(self.data / 'catalog.db').resolve()}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
