"""The EarthSearch query suite: hand-written expected parses in five languages, scored field by field."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).parent
LANGUAGES = ("en", "fr", "de", "es", "it")
FIELDS = ("language", "place", "datetime", "collections", "max_cloud_cover", "themes", "compare")
SIZE_LIMIT_DEG = {"c": 1.2, "r": 12.0, "n": 45.0, "l": 360.0}
DEFAULT_NOW = date(2025, 3, 10)


def load_suite() -> list[dict[str, Any]]:
    cases = []
    for lang in LANGUAGES:
        for case in yaml.safe_load((HERE / f"queries_{lang}.yaml").read_text(encoding="utf-8")):
            cases.append(case)
    return cases


def check(case: dict[str, Any], parsed: dict[str, Any]) -> dict[str, bool]:
    """Field -> whether the parse matches the expectation."""
    out: dict[str, bool] = {"language": parsed["language"] == case["lang"]}
    place = parsed["place"]
    if "at" not in case:
        out["place"] = place is None
    elif place is None:
        out["place"] = False
    else:
        lon, lat = case["at"]
        west, south, east, north = place["bbox"]
        inside = west <= lon <= east and south <= lat <= north
        limit = SIZE_LIMIT_DEG[case.get("size", "l")]
        out["place"] = inside and (east - west) <= limit and (north - south) <= limit
    span = parsed["datetime"]
    if "start" not in case:
        out["datetime"] = span is None
    else:
        out["datetime"] = (
            span is not None
            and span["start"][:10] == str(case["start"])
            and span["end"][:10] == str(case["end"])
            and span["start"].endswith("T00:00:00Z")
            and span["end"].endswith("T23:59:59Z")
        )
    out["collections"] = sorted(parsed["collections"]) == sorted(case.get("col", []))
    expected_cloud = case.get("cloud")
    out["max_cloud_cover"] = (
        parsed["max_cloud_cover"] is None
        if expected_cloud is None
        else parsed["max_cloud_cover"] is not None and abs(parsed["max_cloud_cover"] - expected_cloud) < 1e-6
    )
    out["themes"] = sorted(parsed["themes"]) == sorted(case.get("themes", []))
    out["compare"] = parsed["compare"] == case.get("compare")
    return out


def evaluate(parse: Any) -> dict[str, Any]:
    """Run the suite through ``parse(query, now) -> dict``; pass rates per field and language, and failures."""
    passed: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    totals: dict[str, int] = defaultdict(int)
    failures = []
    for case in load_suite():
        now = date.fromisoformat(str(case["now"])) if "now" in case else DEFAULT_NOW
        parsed = parse(case["q"], now)
        result = check(case, parsed)
        totals[case["lang"]] += 1
        for name, ok in result.items():
            passed[case["lang"]][name] += int(ok)
        if not all(result.values()):
            failures.append({"q": case["q"], "failed": [k for k, v in result.items() if not v], "parse": parsed})
    rates = {lang: {name: round(passed[lang][name] / totals[lang], 4) for name in FIELDS} for lang in LANGUAGES}
    total = sum(totals.values())
    overall = {name: round(sum(passed[lang][name] for lang in LANGUAGES) / total, 4) for name in FIELDS}
    exact = round(1 - len(failures) / total, 4)
    return {"queries": total, "per_language": rates, "overall": overall, "all_fields": exact, "failures": failures}
