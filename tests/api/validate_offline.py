"""Run stac-api-validator fully offline: ../shared/tools/offline_schemas answers `requests`/`urllib` schema
fetches; pystac >= 1.12 fetches with urllib3 directly, so its reads of schema URLs are answered the same way."""

from __future__ import annotations

import inspect
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

import stac_api_validator.validations as validations  # noqa: E402
from stac_api_validator.__main__ import main  # noqa: E402

# stac-api-validator 0.6.8's transaction check PUTs and PATCHes ``eo:cloud_cover`` as the strings "3.14" and
# "12.4" while its item declares the eo extension v1.0.0, whose schema requires a number in [0, 100]; a catalog
# that enforces the schema refuses them (400 naming properties.eo:cloud_cover), and the validator then crashes on
# the unchanged item. With this flag the check sends the same values as numbers and verifies everything else
# (create 201, replace semantics, merge patch, delete, 404). The exact lines are required, so a validator that
# changes them fails here instead of being silently rewritten.
NUMERIC_FLAG = "--numeric-cloud-cover-in-transactions"
STRING_VALUES = ('item_put["properties"]["eo:cloud_cover"] = "3.14"', '"eo:cloud_cover": "12.4"')


def send_numeric_cloud_cover() -> None:
    source = inspect.getsource(validations.validate_transaction)
    missing = [line for line in STRING_VALUES if line not in source]
    if missing:
        raise SystemExit(f"{NUMERIC_FLAG}: the validator no longer contains {missing}; drop the flag")
    for line in STRING_VALUES:
        source = source.replace(line, line.replace('"3.14"', "3.14").replace('"12.4"', "12.4"))
    exec(compile(source, validations.__file__, "exec"), validations.__dict__)


if __name__ == "__main__":
    if NUMERIC_FLAG in sys.argv:
        sys.argv.remove(NUMERIC_FLAG)
        send_numeric_cloud_cover()
    sys.exit(main())
