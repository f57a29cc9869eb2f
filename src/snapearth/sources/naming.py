"""What a Sentinel product name says: platform, sensing time, tile or orbit, baseline.

Names are the one identity every provider shares (Copernicus Data Space, Earth Search, GEODES, SARA all
carry the ESA name), so identity fields are read from it and win over a provider's own mapping.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

_S2 = re.compile(
    r"^(?P<mission>S2[ABCD])_MSI(?P<level>L1C|L2A)_(?P<sensing>\d{8}T\d{6})_N(?P<baseline>\d{4})"
    r"_R(?P<rel>\d{3})_T(?P<tile>\d{2}[A-Z]{3})_(?P<generation>\d{8}T\d{6})$"
)
_S1 = re.compile(
    r"^(?P<mission>S1[ABCD])_(?P<mode>IW|EW|SM|WV|S[1-6])_(?P<ptype>GRD|SLC|OCN|RAW)(?P<res>[FHM_])_"
    r"(?P<level>\d)(?P<cls>[SA])(?P<pol>SH|SV|DH|DV|HH|HV|VV|VH)_(?P<start>\d{8}T\d{6})_(?P<stop>\d{8}T\d{6})"
    r"_(?P<orbit>\d{6})_(?P<datatake>[0-9A-F]{6})(?:_(?P<crc>[0-9A-F]{4}))?$"
)
_POLARIZATIONS = {"SH": ["HH"], "SV": ["VV"], "DH": ["HH", "HV"], "DV": ["VV", "VH"]}


def _stamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)


def strip_extension(name: str) -> str:
    for suffix in (".SAFE.zip", ".SAFE", ".zip", ".ZIP", ".safe"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


@dataclass(frozen=True)
class ProductName:
    """The fields encoded in an ESA Sentinel-1/-2 product name."""

    name: str  # the ESA name without extension; for Sentinel-1 without the CRC suffix
    mission: str  # "sentinel-2a"
    constellation: str  # "sentinel-2"
    sensing: datetime
    tile: str | None = None  # "31TCJ"
    relative_orbit: int | None = None
    absolute_orbit: int | None = None
    baseline: str | None = None  # "05.10"
    level: str | None = None  # "L2A", "L1C", "L1"
    product_type: str | None = None  # "S2MSI2A", "GRD"
    instrument_mode: str | None = None
    polarizations: tuple[str, ...] = ()
    resolution_class: str | None = None
    datatake: str | None = None

    @property
    def item_id(self) -> str:
        """The catalog id, as Planetary Computer forms it: the name without the processing baseline (S2)."""
        return re.sub(r"_N\d{4}_", "_", self.name) if self.constellation == "sentinel-2" else self.name


def parse_product_name(raw: str | None) -> ProductName | None:
    if not raw:
        return None
    name = strip_extension(raw.strip().rsplit("/", 1)[-1])
    match = _S2.match(name)
    if match:
        mission = match["mission"]
        baseline = match["baseline"]
        return ProductName(
            name=name,
            mission=f"sentinel-2{mission[-1].lower()}",
            constellation="sentinel-2",
            sensing=_stamp(match["sensing"]),
            tile=match["tile"],
            relative_orbit=int(match["rel"]),
            baseline=f"{baseline[:2]}.{baseline[2:]}",
            level=match["level"],
            product_type=f"S2MSI{match['level'][1:]}",
        )
    match = _S1.match(name)
    if match:
        mission = match["mission"]
        orbit = int(match["orbit"])
        # relative orbit from the absolute one (ESA formula, known for S1A and S1B only)
        offset = {"a": 73, "b": 27}.get(mission[-1].lower())
        relative = (orbit - offset) % 175 + 1 if offset is not None else None
        canonical = name.rsplit("_", 1)[0] if match["crc"] else name
        return ProductName(
            name=canonical,
            mission=f"sentinel-1{mission[-1].lower()}",
            constellation="sentinel-1",
            sensing=_stamp(match["start"]),
            relative_orbit=relative,
            absolute_orbit=orbit,
            level=f"L{match['level']}",
            product_type=match["ptype"],
            instrument_mode=match["mode"],
            polarizations=tuple(_POLARIZATIONS.get(match["pol"], [match["pol"]])),
            resolution_class=match["res"] if match["res"] != "_" else None,
            datatake=match["datatake"],
        )
    return None
