"""Time expressions in EN/FR/DE/ES/IT, resolved against a reference day ``now``.

A small hand-written grammar instead of Duckling: Duckling is off by a year on "last winter", misreads
"winter 2023", sends "since January" to the future, makes Spanish ranges end-exclusive and misses Italian
ranges. Conventions: seasons are meteorological (spring = March-May, summer = June-August, autumn =
September-November, winter = December of year N to February of N+1, so "winter 2023" is Dec 2023-Feb 2024);
intervals are inclusive whole days in UTC; relative expressions end at the end of ``now``'s day.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

MONTHS: dict[str, int] = {}
for _number, _names in enumerate(
    [
        "january jan janvier janv januar jaenner janner enero gennaio genn",
        "february feb fevrier fevr fev februar febr febrero febbraio",
        "march mars maerz marz marzo",
        "april apr avril avr abril aprile",
        "may mai mayo maggio magg",
        "june jun juin juni junio giugno",
        "july jul juillet juil juli julio luglio",
        "august aug aout agosto",
        "september sep sept septembre setiembre septiembre settembre",
        "october oct octobre oktober okt octubre ottobre ott",
        "november nov novembre noviembre",
        "december dec decembre dezember dez diciembre dicembre",
    ],
    start=1,
):
    for _name in _names.split():
        MONTHS[_name] = _number

SEASONS: dict[str, str] = {}
for _season, _names in {
    "spring": "spring springtime printemps fruehling fruhling fruehjahr fruhjahr primavera",
    "summer": "summer summertime ete sommer verano estate",
    "autumn": "autumn fall automne herbst otono autunno",
    "winter": "winter hiver invierno inverno",
}.items():
    for _name in _names.split():
        SEASONS[_name] = _season
SEASON_START_MONTH = {"spring": 3, "summer": 6, "autumn": 9, "winter": 12}

NUMBERS: dict[str, int] = {}
for _value, _names in enumerate(
    [
        "one a an un une ein eine einen einem einer uno una",
        "two deux zwei dos due couple",
        "three trois drei tres tre",
        "four quatre vier cuatro quattro",
        "five cinq fuenf funf cinco cinque",
        "six sechs seis sei",
        "seven sept sieben siete sette",
        "eight huit acht ocho otto",
        "nine neuf neun nueve nove",
        "ten dix zehn diez dieci",
        "eleven onze elf once undici",
        "twelve douze zwoelf zwolf doce dodici",
    ],
    start=1,
):
    for _name in _names.split():
        NUMBERS.setdefault(_name, _value)

UNITS: dict[str, str] = {}
for _unit, _names in {
    "day": "day days jour jours journee journees tag tage tagen dia dias giorno giorni",
    "week": "week weeks semaine semaines woche wochen semana semanas settimana settimane",
    "month": "month months mois monat monate monaten mes meses mese mesi",
    "year": "year years an ans annee annees jahr jahre jahren ano anos anno anni",
}.items():
    for _name in _names.split():
        UNITS[_name] = _unit


def _alt(words: list[str]) -> str:
    return "|".join(sorted((re.escape(w) for w in words), key=len, reverse=True))


MONTH = rf"(?P<{{n}}>{_alt(list(MONTHS))})\.?"
SEASON = rf"(?P<season>{_alt(list(SEASONS))})"
UNIT = rf"(?P<unit>{_alt(list(UNITS))})"
NUM = rf"(?P<num>\d{{1,3}}|{_alt(list(NUMBERS))})"
YEAR = r"(?P<{n}>(?:19|20)\d\d)"
DAY = r"(?P<{n}>[0-3]?\d)(?:st|nd|rd|th|er|eme|o|º|\.)?"
OF = r"(?:\s+(?:of|de|del|di|des|du|d))?"  # "15 de marzo de 2025", "mars de 2022"
LAST = r"(?:last|past|previous|recent|dernier|derniere|derniers|dernieres|passe|passee|passes|passees|ecoule|ecoulee|letzte|letzten|letzter|letztes|vergangene|vergangenen|vergangener|vergangenes|vorige|vorigen|voriges|voriger|ultimo|ultima|ultimos|ultimas|pasado|pasada|pasados|pasadas|ultimi|ultime|scorso|scorsa|scorsi|scorse|passato|passata|passati|passate)"  # noqa: E501
THIS = r"(?:this|current|ce|cet|cette|en cours|dieses|diesen|diese|dieser|diesem|este|esta|questo|questa|quest|corrente|in corso|actual)"  # noqa: E501
RANGE_FROM = r"(?:between|from|entre|du|de|des|depuis le|zwischen|von|vom|ab|desde|del|tra|fra|da|dal|dalla)"
RANGE_TO = r"(?:and|to|until|till|through|et|a|au|jusqu au|und|bis|zum|y|al|hasta|e|ad|fino a|fino al|fino ad|-)"
SINCE = r"(?:since|depuis|seit|desde|dal|dalla|dall|da)"


@dataclass(frozen=True)
class Interval:
    start: date
    end: date  # inclusive


@dataclass(frozen=True)
class DateMatch:
    interval: Interval
    span: tuple[int, int]  # character span in the normalised text


def month_interval(year: int, month: int) -> Interval:
    return Interval(date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1]))


def year_interval(year: int) -> Interval:
    return Interval(date(year, 1, 1), date(year, 12, 31))


def season_interval(season: str, year: int) -> Interval:
    """Meteorological season; winter ``year`` runs from December ``year`` to February ``year + 1``."""
    first = SEASON_START_MONTH[season]
    start = date(year, first, 1)
    end_year, end_month = (year + 1, 2) if season == "winter" else (year, first + 2)
    return Interval(start, month_interval(end_year, end_month).end)


def latest_season(season: str, now: date, *, ended: bool) -> Interval:
    """The latest occurrence of ``season`` that started by ``now`` (``ended``: that is already over)."""
    for year in range(now.year, now.year - 3, -1):
        interval = season_interval(season, year)
        if (interval.end < now) if ended else (interval.start <= now):
            return interval
    return season_interval(season, now.year - 2)


def latest_month(month: int, now: date) -> Interval:
    year = now.year if month <= now.month else now.year - 1
    return month_interval(year, month)


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _num(text: str) -> int:
    return int(text) if text.isdigit() else NUMBERS[text]


def _g(pattern: str) -> str:
    """Expand ``{M1}``-style placeholders into uniquely named groups."""
    out = pattern
    for key in ("M1", "M2"):
        out = out.replace("{" + key + "}", MONTH.replace("{n}", key.lower()))
    for key in ("Y1", "Y2"):
        out = out.replace("{" + key + "}", YEAR.replace("{n}", key.lower()))
    for key in ("D1", "D2"):
        out = out.replace("{" + key + "}", DAY.replace("{n}", key.lower()))
    return out


Handler = Callable[[dict[str, str | None], date], Interval | None]


def _month(groups: dict[str, str | None], key: str) -> int:
    return MONTHS[groups[key] or ""]


def _year_or_latest(groups: dict[str, str | None], month: int, now: date, key: str = "y1") -> int:
    value = groups.get(key)
    if value:
        return int(value)
    return latest_month(month, now).start.year


def _h_iso_range(g: dict[str, str | None], now: date) -> Interval | None:
    start = safe_date(int(g["y1"] or 0), int(g["mo1"] or 0), int(g["d1"] or 0))
    end = safe_date(int(g["y2"] or 0), int(g["mo2"] or 0), int(g["d2"] or 0))
    if start is None or end is None or end < start:
        return None
    return Interval(start, end)


def _h_iso_day(g: dict[str, str | None], now: date) -> Interval | None:
    day = safe_date(int(g["y1"] or 0), int(g["mo1"] or 0), int(g["d1"] or 0))
    return Interval(day, day) if day else None


def _h_iso_month(g: dict[str, str | None], now: date) -> Interval | None:
    month = int(g["mo1"] or 0)
    return month_interval(int(g["y1"] or 0), month) if 1 <= month <= 12 else None


def _h_numeric_day(g: dict[str, str | None], now: date) -> Interval | None:
    day = safe_date(int(g["y1"] or 0), int(g["mo1"] or 0), int(g["d1"] or 0))
    return Interval(day, day) if day else None


def _h_day_range_month(g: dict[str, str | None], now: date) -> Interval | None:
    month = _month(g, "m1")
    year = _year_or_latest(g, month, now)
    start, end = safe_date(year, month, int(g["d1"] or 0)), safe_date(year, month, int(g["d2"] or 0))
    if start is None or end is None or end < start:
        return None
    return Interval(start, end)


def _h_day_month_range(g: dict[str, str | None], now: date) -> Interval | None:
    m1, m2 = _month(g, "m1"), _month(g, "m2")
    year = _year_or_latest(g, m2, now)
    start_year = year - 1 if m1 > m2 else year
    start, end = safe_date(start_year, m1, int(g["d1"] or 0)), safe_date(year, m2, int(g["d2"] or 0))
    if start is None or end is None or end < start:
        return None
    return Interval(start, end)


def _h_month_range(g: dict[str, str | None], now: date) -> Interval | None:
    m1, m2 = _month(g, "m1"), _month(g, "m2")
    y1_text, y2_text = g.get("y1"), g.get("y2")
    y2 = int(y2_text) if y2_text else (int(y1_text) if y1_text else latest_month(m2, now).start.year)
    y1 = int(y1_text) if y1_text else (y2 - 1 if m1 > m2 else y2)
    start, end = month_interval(y1, m1), month_interval(y2, m2)
    return Interval(start.start, end.end) if start.start <= end.end else None


def _h_year_range(g: dict[str, str | None], now: date) -> Interval | None:
    y1, y2 = int(g["y1"] or 0), int(g["y2"] or 0)
    return Interval(date(y1, 1, 1), date(y2, 12, 31)) if y1 <= y2 else None


def _h_day_month_year(g: dict[str, str | None], now: date) -> Interval | None:
    month = _month(g, "m1")
    day = safe_date(_year_or_latest(g, month, now), month, int(g["d1"] or 0))
    return Interval(day, day) if day else None


def _h_month_year(g: dict[str, str | None], now: date) -> Interval | None:
    return month_interval(int(g["y1"] or 0), _month(g, "m1"))


def _h_season_year(g: dict[str, str | None], now: date) -> Interval | None:
    season = SEASONS[g["season"] or ""]
    # "winter 2023/2024", "hiver 2023-24": the first year names the winter
    return season_interval(season, int(g["y1"] or 0))


def _h_last_season(g: dict[str, str | None], now: date) -> Interval | None:
    return latest_season(SEASONS[g["season"] or ""], now, ended=True)


def _h_this_season(g: dict[str, str | None], now: date) -> Interval | None:
    season = SEASONS[g["season"] or ""]
    if season == "winter":
        return season_interval("winter", now.year - 1 if now.month <= 2 else now.year)
    return season_interval(season, now.year)


def _h_season(g: dict[str, str | None], now: date) -> Interval | None:
    return latest_season(SEASONS[g["season"] or ""], now, ended=False)


def _h_last_unit(g: dict[str, str | None], now: date) -> Interval | None:
    unit = UNITS[g["unit"] or ""]
    if unit == "day":
        day = now - timedelta(days=1)
        return Interval(day, day)
    if unit == "week":
        monday = now - timedelta(days=now.weekday() + 7)
        return Interval(monday, monday + timedelta(days=6))
    if unit == "month":
        previous = add_months(now.replace(day=1), -1)
        return month_interval(previous.year, previous.month)
    return year_interval(now.year - 1)


def _h_this_unit(g: dict[str, str | None], now: date) -> Interval | None:
    unit = UNITS[g["unit"] or ""]
    if unit == "day":
        return Interval(now, now)
    if unit == "week":
        monday = now - timedelta(days=now.weekday())
        return Interval(monday, monday + timedelta(days=6))
    if unit == "month":
        return month_interval(now.year, now.month)
    return year_interval(now.year)


def _h_past_n_units(g: dict[str, str | None], now: date) -> Interval | None:
    count = _num(g["num"] or "1")
    unit = UNITS[g["unit"] or ""]
    if count <= 0 or count > 500:
        return None
    if unit == "day":
        start = now - timedelta(days=count)
    elif unit == "week":
        start = now - timedelta(days=7 * count)
    elif unit == "month":
        start = add_months(now, -count)
    else:
        start = add_months(now, -12 * count)
    return Interval(start, now)


def _h_since_month_year(g: dict[str, str | None], now: date) -> Interval | None:
    month = _month(g, "m1")
    year = _year_or_latest(g, month, now)
    start = date(year, month, 1)
    return Interval(start, now) if start <= now else None


def _h_since_year(g: dict[str, str | None], now: date) -> Interval | None:
    start = date(int(g["y1"] or 0), 1, 1)
    return Interval(start, now) if start <= now else None


def _h_since_season(g: dict[str, str | None], now: date) -> Interval | None:
    season = SEASONS[g["season"] or ""]
    year = g.get("y1")
    start = season_interval(season, int(year)).start if year else latest_season(season, now, ended=False).start
    return Interval(start, now) if start <= now else None


def _h_yesterday(g: dict[str, str | None], now: date) -> Interval | None:
    day = now - timedelta(days=1)
    return Interval(day, day)


def _h_day_before_yesterday(g: dict[str, str | None], now: date) -> Interval | None:
    day = now - timedelta(days=2)
    return Interval(day, day)


def _h_today(g: dict[str, str | None], now: date) -> Interval | None:
    return Interval(now, now)


def _h_month(g: dict[str, str | None], now: date) -> Interval | None:
    return latest_month(_month(g, "m1"), now)


def _h_last_month_name(g: dict[str, str | None], now: date) -> Interval | None:
    month = _month(g, "m1")
    year = now.year if month < now.month else now.year - 1
    return month_interval(year, month)


def _h_year(g: dict[str, str | None], now: date) -> Interval | None:
    return year_interval(int(g["y1"] or 0))


_B = r"(?<![\w.])"  # a left word boundary that also refuses decimals ("48.2015")
_E = r"(?![\w%°]|\.\d)"
_ART = r"(?:(?:in the|over the|during the|dans les|dans le|au cours des|au cours du|en los|en las|negli|nelle|nei|the|le|la|les|l|el|los|las|il|lo|gli|der|die|das|den|dem|im|in den|in der|am|au|en|in|nel|nello|nell|nella|durante|during|depuis|over|en el|en la)\s+)?"  # noqa: E501
_YSEP = r"(?:\s*(?:,|de|del|of)?\s*)"

# Ordered: longer, more specific forms first; each consumes its span so later patterns see the rest.
_RULES: list[tuple[str, Handler]] = [
    (
        r"{Y1}-(?P<mo1>\d\d)-(?P<d1>\d\d)\s*(?:to|until|au|a|bis|al|-|/|\.\.)\s*{Y2}-(?P<mo2>\d\d)-(?P<d2>\d\d)",
        _h_iso_range,
    ),
    (r"{Y1}-(?P<mo1>\d\d)-(?P<d1>\d\d)(?:t[\d:]+z?)?", _h_iso_day),
    (r"{Y1}-(?P<mo1>\d\d)", _h_iso_month),
    (r"(?P<d1>[0-3]?\d)[/.](?P<mo1>[01]?\d)[/.]{Y1}", _h_numeric_day),
    (RANGE_FROM + r"?\s*{D1}\s*" + RANGE_TO + r"\s*{D2}" + OF + r"\s+{M1}" + _YSEP + r"{Y1}?", _h_day_range_month),
    (r"{M1}\s+(?P<d1>[0-3]?\d)\s*(?:-|to|until|through)\s*(?P<d2>[0-3]?\d)(?:\s*,\s*|\s+){Y1}?", _h_day_range_month),
    (
        RANGE_FROM + r"?\s*{D1}" + OF + r"\s+{M1}\s*" + RANGE_TO + r"\s*{D2}" + OF + r"\s+{M2}" + _YSEP + r"{Y1}?",
        _h_day_month_range,
    ),
    (
        RANGE_FROM
        + r"\s+"
        + _ART
        + r"{M1}"
        + _YSEP
        + r"{Y1}?\s*"
        + RANGE_TO
        + r"\s+"
        + _ART
        + r"{M2}"
        + _YSEP
        + r"{Y2}?",
        _h_month_range,
    ),
    (r"{M1}\s*(?:-|\u2013|to|/)\s*{M2}" + _YSEP + r"{Y2}", _h_month_range),
    (RANGE_FROM + r"?\s*{Y1}\s*(?:" + RANGE_TO + r"|\u2013)\s*{Y2}", _h_year_range),
    (r"{D1}" + OF + r"\s+{M1}" + _YSEP + r"{Y1}", _h_day_month_year),
    (r"{M1}\s+{D1}(?:\s*,\s*|\s+){Y1}", _h_day_month_year),
    (SINCE + r"\s+" + _ART + r"{M1}" + _YSEP + r"{Y1}?", _h_since_month_year),
    (SINCE + r"\s+" + _ART + SEASON + r"(?:" + _YSEP + r"{Y1})?", _h_since_season),
    (SINCE + r"\s+" + _ART + r"{Y1}", _h_since_year),
    (r"{M1}" + _YSEP + r"{Y1}", _h_month_year),
    (SEASON + _YSEP + r"{Y1}(?:\s*[/-]\s*(?P<y2>\d{2,4}))?", _h_season_year),
    (_ART + LAST + r"\s+" + SEASON, _h_last_season),
    (_ART + SEASON + r"\s+" + LAST, _h_last_season),
    (THIS + r"\s+" + SEASON, _h_this_season),
    (_ART + LAST + r"\s+" + NUM + r"\s+" + UNIT, _h_past_n_units),
    (
        r"(?:in|within|over|during|depuis|seit|en|durante|desde hace|negli|nelle|nei|da)\s+" + NUM + r"\s+" + UNIT,
        _h_past_n_units,
    ),
    (_ART + NUM + r"\s+" + UNIT + r"\s+" + LAST, _h_past_n_units),
    (_ART + NUM + r"\s+" + LAST + r"\s+" + UNIT, _h_past_n_units),
    (_ART + LAST + r"\s+" + UNIT, _h_last_unit),
    (_ART + UNIT + r"\s+" + LAST, _h_last_unit),
    (THIS + r"\s+" + UNIT, _h_this_unit),
    (
        r"(?:day before yesterday|avant hier|vorgestern|anteayer|antes de ayer|l altro ieri|altroieri)",
        _h_day_before_yesterday,
    ),
    (r"(?:yesterday|hier|gestern|ayer|ieri)", _h_yesterday),
    (r"(?:today|aujourd hui|heute|hoy|oggi)", _h_today),
    (_ART + LAST + r"\s+{M1}", _h_last_month_name),
    (_ART + r"{M1}\s+" + LAST, _h_last_month_name),
    (r"{M1}", _h_month),
    (_ART + SEASON, _h_season),
    (r"(?:in|en|im|nel|del|of|de)?\s*(?:(?:the\s+)?year|l annee|annee|jahr|ano|anno)?\s*{Y1}", _h_year),
]

_COMPILED = [(re.compile(_B + _g(p) + _E), h) for p, h in _RULES]


def find_dates(text: str, now: date) -> list[DateMatch]:
    """All date expressions in ``text`` (already normalised: folded, apostrophes as spaces)."""
    found: list[DateMatch] = []
    taken = [False] * len(text)
    for regex, handler in _COMPILED:
        for match in regex.finditer(text):
            start, end = match.span()
            while start < end and text[start] == " ":
                start += 1
            if start >= end or any(taken[start:end]):
                continue
            try:
                interval = handler(match.groupdict(), now)
            except (KeyError, ValueError, OverflowError):
                interval = None
            if interval is None:
                continue
            found.append(DateMatch(interval, (start, end)))
            for i in range(start, end):
                taken[i] = True
    found.sort(key=lambda m: m.span)
    return found


def combine(matches: list[DateMatch]) -> Interval | None:
    """One interval for the query: the span covering every expression found (e.g. "March 2022 and May 2022")."""
    if not matches:
        return None
    return Interval(min(m.interval.start for m in matches), max(m.interval.end for m in matches))
