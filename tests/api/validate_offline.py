"""Run stac-api-validator fully offline: ../shared/tools/offline_schemas answers `requests`/`urllib` schema
fetches; pystac >= 1.12 fetches with urllib3 directly, so its reads of schema URLs are answered the same way."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: tests.fixtures.shared

from tests.fixtures.shared import offline_schemas as load_offline_schemas

offline_schemas = load_offline_schemas()  # patches requests and urllib before the validator imports
import pystac.stac_io  # noqa: E402

_read = pystac.stac_io.DefaultStacIO.read_text_from_href


def _read_offline(self: pystac.stac_io.DefaultStacIO, href: str) -> str:
    path = offline_schemas.local_path(href)
    if path is None:
        return _read(self, href)
    return Path(path).read_text()


pystac.stac_io.DefaultStacIO.read_text_from_href = _read_offline  # type: ignore[method-assign]

from stac_api_validator.__main__ import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
