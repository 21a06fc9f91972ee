"""Value pools: Faker-built name and address pools, network prefixes, user agents, calendars.

Faker runs only here, a few thousand calls per locale, from one fixed seed (the pools are the same
for every world); numpy then draws indices into the pools with the world's seed. Phone numbers and e-mail domains are chosen to be
unmistakably synthetic.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import polars as pl

from simulator.seeding import seed_int

POOL_SIZE = 2000
#: The seed of the Faker pools (:func:`locale_pools`), the same for every world.
POOL_SEED = 2025

#: Reserved e-mail domains (RFC 2606 / RFC 6761): never deliverable.
EMAIL_HOSTS = ("example.com", "example.net", "example.org", "shop.test", "mail.invalid")

#: Locales whose names are written family name first, without a space.
FAMILY_FIRST = {"ko_KR", "ja_JP", "zh_CN", "zh_TW"}


@dataclass(frozen=True)
class LocalePools:
    """Pools of strings for one locale, as polars Series to gather from."""

    locale: str
    last: pl.Series
    first: pl.Series
    user: pl.Series
    city: pl.Series
    street: pl.Series


@lru_cache(maxsize=32)
def locale_pools(locale: str) -> LocalePools:
    """Build (once per process) the pools of one locale, from a fixed seed.

    The pools are the same for every world: a world's seed decides which entries its people get
    (the indices drawn into the pools), not what the pools hold. Built from each world's seed, they
    cost half a second of Faker calls in every process for every new world (a sealed run has a world
    per dataset); their entries come from Faker's public word lists either way.
    """
    from faker import Faker

    fake = Faker(locale)
    fake.seed_instance(seed_int(POOL_SEED, "faker-pool", sum(map(ord, locale)) * 7919 + len(locale)))

    def pool(fn: Callable[[], str]) -> pl.Series:  # a Faker provider method
        return pl.Series([fn() for _ in range(POOL_SIZE)], dtype=pl.String)

    city_fn = getattr(fake, "city", None) or fake.state
    return LocalePools(
        locale=locale,
        last=pool(fake.last_name),
        first=pool(fake.first_name),
        user=pool(lambda: fake.user_name().lower()),
        city=pool(city_fn),
        street=pool(fake.street_name),
    )


#: Per-locale phone layouts inside ranges reserved for fiction or never allocated:
#: (prefix, digits of the first random group, separator, digits of the second group).
PHONE_FORMATS: dict[str, tuple[str, int, str, int]] = {
    "ko_KR": ("010-0", 3, "-", 4),  # mobile middle blocks starting with 0 are not allocated
    "en_GB": ("+44 7700 900", 3, "", 0),  # Ofcom drama range 07700 900000-900999
    "fr_FR": ("+33 1 99 00 ", 2, " ", 2),  # ARCEP: 01 99 00 xx xx reserved for fiction
}
DEFAULT_PHONE = ("+999 ", 3, " ", 4)  # ITU country code 999 is unassigned


def phones(locale: str, rng: np.random.Generator, n: int) -> pl.Series:
    """Phone numbers from ranges never assigned to subscribers, in the locale's layout.

    ko_KR ``010-0XXX-XXXX``; en_US and en_CA ``+1-AAA-555-01XX`` (NANP fictional range);
    en_GB and fr_FR their regulators' drama ranges; others ``+999 XXX XXXX`` (unassigned
    country code).
    """
    a = rng.integers(0, 1000, n)
    b = rng.integers(0, 10000, n)
    if locale in ("en_US", "en_CA"):
        area = 201 + (a % 780)
        return (
            pl.DataFrame({"a": area, "b": b % 100})
            .select(
                pl.concat_str(
                    [pl.lit("+1-"), pl.col("a").cast(pl.String), pl.lit("-555-01"), pl.col("b").cast(pl.String).str.zfill(2)]
                )
            )
            .to_series()
        )
    prefix, d1, sep, d2 = PHONE_FORMATS.get(locale, DEFAULT_PHONE)
    parts = [pl.lit(prefix), (pl.col("a") % 10**d1).cast(pl.String).str.zfill(d1)]
    if d2:
        parts += [pl.lit(sep), (pl.col("b") % 10**d2).cast(pl.String).str.zfill(d2)]
    return pl.DataFrame({"a": a, "b": b}).select(pl.concat_str(parts)).to_series()


# ---- network -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prefixes:
    """Address blocks with their ASN and country; ``weight`` is the share within the group."""

    base: np.ndarray  # uint32 network address
    size: np.ndarray  # number of addresses
    asn: np.ndarray
    country: np.ndarray  # object array of ISO codes
    weight: np.ndarray


def _prefixes(rows: list[tuple[str, int, int, str, float]]) -> Prefixes:
    base, size, asn, country, weight = [], [], [], [], []
    for cidr_base, bits, a, c, w in rows:
        o = [int(x) for x in cidr_base.split(".")]
        base.append((o[0] << 24) | (o[1] << 16) | (o[2] << 8) | o[3])
        size.append(1 << (32 - bits))
        asn.append(a)
        country.append(c)
        weight.append(w)
    weights = np.asarray(weight, dtype=np.float64)
    return Prefixes(
        np.asarray(base, dtype=np.uint32),
        np.asarray(size, dtype=np.int64),
        np.asarray(asn, dtype=np.int32),
        np.asarray(country, dtype=object),
        weights / weights.sum(),
    )


#: Korean fixed broadband (docs/calibration.md §7: KT 41%, SK 29%, LG U+ 21%, cable 9%).
KR_FIXED = _prefixes(
    [
        ("121.128.0.0", 10, 4766, "KR", 0.41),
        ("221.140.0.0", 14, 9318, "KR", 0.29),
        ("106.240.0.0", 12, 17858, "KR", 0.21),
        ("58.120.0.0", 13, 38091, "KR", 0.09),
    ]
)
#: Korean mobile carriers (SKT 39%, KT 24%, LG U+ 20%, MVNO on host networks 18%).
KR_MOBILE = _prefixes(
    [
        ("223.32.0.0", 11, 9644, "KR", 0.43),
        ("39.7.0.0", 16, 4766, "KR", 0.33),
        ("117.111.0.0", 16, 17853, "KR", 0.24),
    ]
)
#: Residential and mobile networks abroad (customers travelling).
FOREIGN_RESIDENTIAL = _prefixes(
    [
        ("126.0.0.0", 9, 17676, "JP", 0.30),
        ("73.0.0.0", 9, 7922, "US", 0.25),
        ("113.160.0.0", 11, 45899, "VN", 0.15),
        ("180.96.0.0", 11, 4134, "CN", 0.15),
        ("1.128.0.0", 11, 1221, "AU", 0.15),
    ]
)
#: Cloud and hosting providers abroad (VPN exits, crawlers, servers).
FOREIGN_CLOUD = _prefixes(
    [
        ("3.112.0.0", 12, 16509, "JP", 0.2),
        ("54.64.0.0", 11, 16509, "US", 0.2),
        ("34.80.0.0", 12, 15169, "TW", 0.15),
        ("20.40.0.0", 13, 8075, "SG", 0.15),
        ("47.74.0.0", 15, 45102, "HK", 0.15),
        ("139.59.0.0", 16, 14061, "DE", 0.15),
    ]
)


def ip_strings(ip: np.ndarray) -> pl.Series:
    """Dotted-quad strings of uint32 addresses, built column-wise (once per distinct address)."""
    uniq, inverse = np.unique(ip.astype(np.int64), return_inverse=True)
    df = pl.DataFrame({f"o{k}": ((uniq >> (24 - 8 * k)) & 255).astype(np.int16) for k in range(4)})
    strings = df.select(pl.concat_str([pl.col(f"o{k}") for k in range(4)], separator=".")).to_series()
    return strings.gather(inverse.ravel()).alias("src_ip")


def addresses_in(prefixes: Prefixes, u_prefix: np.ndarray, u_host: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map uniforms to (ip, asn, country index into prefixes.country) by weighted prefix."""
    idx = np.searchsorted(np.cumsum(prefixes.weight), u_prefix, side="right").clip(0, len(prefixes.base) - 1)
    host = (u_host * (prefixes.size[idx] - 2)).astype(np.int64) + 1
    ip = prefixes.base[idx].astype(np.int64) + host
    return ip, prefixes.asn[idx], idx


# ---- clients -------------------------------------------------------------------------------

CLIENTS = ("app_android", "app_ios", "mobile_web", "desktop_web")
CLIENT_SHARE = np.array([0.62, 0.24, 0.07, 0.07])
USER_AGENTS: dict[str, tuple[str, ...]] = {
    "app_android": (
        "ShopApp/7.12.0 (Android 14; SM-S921N)",
        "ShopApp/7.12.0 (Android 13; SM-A536N)",
        "ShopApp/7.11.2 (Android 14; SM-S918N)",
        "ShopApp/7.12.0 (Android 12; LM-V500N)",
    ),
    "app_ios": ("ShopApp/7.12.0 (iPhone15,3; iOS 18.1)", "ShopApp/7.11.2 (iPhone14,5; iOS 17.6)"),
    "mobile_web": (
        "Mozilla/5.0 (Linux; Android 14; SM-S921N) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    ),
    "desktop_web": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    ),
}
UA_POOL = pl.Series("user_agent", [ua for c in CLIENTS for ua in USER_AGENTS[c]], dtype=pl.String)
UA_OFFSET = np.cumsum([0] + [len(USER_AGENTS[c]) for c in CLIENTS])[:-1]
UA_COUNT = np.array([len(USER_AGENTS[c]) for c in CLIENTS])


def user_agent_index(u_client: np.ndarray, version: np.ndarray) -> np.ndarray:
    """Index into :data:`UA_POOL`: a client by :data:`CLIENT_SHARE` from a uniform, then one of its versions.

    ``version`` is any non-negative integer per row (reduced modulo the client's versions).
    """
    client = np.searchsorted(np.cumsum(CLIENT_SHARE), u_client, side="right").clip(0, len(CLIENTS) - 1)
    return UA_OFFSET[client] + (np.asarray(version).astype(np.uint64) % UA_COUNT[client].astype(np.uint64)).astype(np.int64)


# ---- calendar ------------------------------------------------------------------------------

#: Share of customer sessions per local hour (docs/calibration.md §2).
HOURLY_SHARE = np.array(
    [4.0, 2.1, 1.2, 0.7, 0.5, 0.6, 1.2, 2.3, 3.8, 4.9, 5.6, 5.7, 5.5, 5.4, 5.3, 5.1, 5.1, 4.8, 4.7, 5.1, 5.9, 6.7, 7.4, 6.4]
)
HOURLY_SHARE = HOURLY_SHARE / HOURLY_SHARE.sum()
#: Mon..Sun request multipliers (docs/calibration.md §2).
WEEKDAY_MULT = np.array([1.06, 1.07, 1.04, 1.02, 0.97, 0.88, 0.96])

#: Korean public holidays 2024-2026; the main days of Seollal and Chuseok get a deeper dip.
_KR_HOLIDAYS = {
    "2024-01-01": 0.92,
    "2024-02-09": 0.92,
    "2024-02-10": 0.88,
    "2024-02-11": 0.92,
    "2024-02-12": 0.92,
    "2024-03-01": 0.92,
    "2024-05-05": 0.92,
    "2024-05-06": 0.92,
    "2024-05-15": 0.92,
    "2024-06-06": 0.92,
    "2024-08-15": 0.92,
    "2024-09-16": 0.92,
    "2024-09-17": 0.88,
    "2024-09-18": 0.92,
    "2024-10-03": 0.92,
    "2024-10-09": 0.92,
    "2024-12-25": 0.92,
    "2025-01-01": 0.92,
    "2025-01-28": 0.92,
    "2025-01-29": 0.88,
    "2025-01-30": 0.92,
    "2025-03-01": 0.92,
    "2025-03-03": 0.92,
    "2025-05-05": 0.92,
    "2025-05-06": 0.92,
    "2025-06-03": 0.92,
    "2025-06-06": 0.92,
    "2025-08-15": 0.92,
    "2025-10-03": 0.92,
    "2025-10-05": 0.92,
    "2025-10-06": 0.88,
    "2025-10-07": 0.92,
    "2025-10-08": 0.92,
    "2025-10-09": 0.92,
    "2025-12-25": 0.92,
    "2026-01-01": 0.92,
    "2026-02-16": 0.92,
    "2026-02-17": 0.88,
    "2026-02-18": 0.92,
    "2026-03-02": 0.92,
    "2026-05-05": 0.92,
    "2026-05-25": 0.92,
    "2026-06-03": 0.92,
    "2026-08-17": 0.92,
    "2026-09-24": 0.92,
    "2026-09-25": 0.88,
    "2026-09-26": 0.92,
    "2026-10-05": 0.92,
    "2026-10-09": 0.92,
    "2026-12-25": 0.92,
}


def day_multiplier(day: dt.date) -> float:
    """Traffic multiplier of a calendar day: weekday rhythm times the holiday dip."""
    return float(WEEKDAY_MULT[day.weekday()] * _KR_HOLIDAYS.get(day.isoformat(), 1.0))


def is_holiday(day: dt.date) -> bool:
    """A Korean public holiday (2024-2026)."""
    return day.isoformat() in _KR_HOLIDAYS
