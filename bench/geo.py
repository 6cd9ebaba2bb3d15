"""Benchmark of the IP-to-country table (the phones' geofence): import, blob, call-core load, lookups.

Run: .venv/bin/python bench/geo.py [--runs N] [--ipv4 N] [--ipv6 N] [FILE ...]

With FILEs (the registries' delegated statistics files) it measures those;
without, it writes five synthetic registry files of realistic size (about
220,000 IPv4 and 70,000 IPv6 blocks, sizes and countries drawn like the real
ones, with summary, ASN and reserved lines) into a temporary directory. It
prints the median of N runs of: parsing and merging the files
(security.ip_countries.build, what manage.py import_ip_countries does before
it stores), encoding the blob alone, the blob's size, the call core's load
(decode and check the blob, build the lookup), and lookups per second for
IPv4 and IPv6 hits and misses, beside a baseline measured in the same run:
the same binary search with the address parsed by ``ipaddress``. Nothing is
written to the database or Redis.
"""

import argparse
import bisect
import ipaddress
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from scratch import timed  # bench/ is the script's folder, first on sys.path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "softswitch_portal.settings")

REGISTRIES = ("afrinic", "apnic", "arin", "lacnic", "ripencc")
# Delegated block sizes (IPv4 addresses) roughly as often as the registries give them out; a few are no CIDR.
IPV4_SIZES = (256, 256, 256, 512, 1024, 1024, 2048, 4096, 8192, 16384, 65536, 768, 1280, 3072)
IPV6_PREFIXES = (32, 32, 29, 48, 48, 48, 44, 40, 56)
LOOKUPS = 200_000


def countries(rng):
    """~240 codes, a few of them far more common (as US, DE, GB, CN, ... are in the real files)."""
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    codes = sorted({rng.choice(letters) + rng.choice(letters) for _ in range(600)} - {"ZZ"})[:240]
    weights = [50 if i < 10 else 1 for i in range(len(codes))]
    return codes, weights


def synthesise(directory, n_ipv4, n_ipv6, seed=42):
    """Five files in the registries' format; returns their paths."""
    rng = random.Random(seed)
    codes, weights = countries(rng)
    per = len(REGISTRIES)
    paths = []
    ipv4_next = 1 << 24
    ipv6_next = 0x2001_0200 << 96
    for number, registry in enumerate(REGISTRIES):
        lines = []
        for _ in range(n_ipv4 // per):
            size = rng.choice(IPV4_SIZES)
            if rng.random() < 0.05:
                lines.append(f"{registry}|ZZ|ipv4|{ipaddress.IPv4Address(ipv4_next)}|{size}||available|")
                ipv4_next += size
                continue
            country = rng.choices(codes, weights)[0]
            start = ipaddress.IPv4Address(ipv4_next)
            lines.append(f"{registry}|{country}|ipv4|{start}|{size}|20100101|allocated|{number}")
            ipv4_next += size
        for _ in range(n_ipv6 // per):
            length = rng.choice(IPV6_PREFIXES)
            block = 1 << (128 - length)
            ipv6_next = (ipv6_next + block - 1) // block * block  # aligned on its own prefix
            country = rng.choices(codes, weights)[0]
            lines.append(
                f"{registry}|{country}|ipv6|{ipaddress.IPv6Address(ipv6_next)}|{length}|20100101|assigned|{number}"
            )
            ipv6_next += block * rng.choice((1, 1, 2))
        for asn in range(1000):
            lines.append(f"{registry}|{rng.choice(codes)}|asn|{number * 100000 + asn}|1|20100101|allocated|{number}")
        header = [
            f"2.3|{registry}|20240101|{len(lines)}|19830101|20240101|+0000",
            f"{registry}|*|asn|*|1000|summary",
            f"{registry}|*|ipv4|*|{n_ipv4 // per}|summary",
            f"{registry}|*|ipv6|*|{n_ipv6 // per}|summary",
        ]
        path = Path(directory) / f"delegated-{registry}-extended-latest"
        path.write_text("\n".join(header + lines) + "\n")
        paths.append(str(path))
    return paths


def per_second(fn, items, runs):
    """Median lookups per second of ``fn`` over ``items``."""
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        for item in items:
            fn(item)
        rates.append(len(items) / (time.perf_counter() - start))
    return statistics.median(rates)


def samples(table, rng):
    """Addresses inside ranges (hits) and in the gaps between them (misses), IPv4 and IPv6."""
    ranges = table.ranges
    out = {}
    for version in (4, 6):
        spans = list(ranges.ranges(version))
        gaps = [(a[1] + 1, b[0] - 1) for a, b in zip(spans, spans[1:], strict=False) if b[0] > a[1] + 1]
        make = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
        hits = [str(make(rng.randint(*rng.choice(spans)[:2]))) for _ in range(LOOKUPS)]
        misses = [str(make(rng.randint(*rng.choice(gaps)))) for _ in range(LOOKUPS)] if gaps else []
        out[version] = hits, misses
    return out


def ipaddress_lookup(table):
    """The baseline: the same arrays and bisect, the address parsed by ipaddress."""
    r = table.ranges
    v4 = (r.ipv4_starts, r.ipv4_ends, r.ipv4_countries)
    v6 = (r.ipv6_starts, r.ipv6_ends, r.ipv6_countries)
    codes = r.countries

    def lookup(ip):
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return None
        if address.version == 6 and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if address.version == 4:
            starts, ends, indexes = v4
            value = int(address)
        else:
            starts, ends, indexes = v6
            value = int(address) >> 64
        i = bisect.bisect_right(starts, value) - 1
        return codes[indexes[i]] if i >= 0 and value <= ends[i] else None

    return lookup


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="delegated statistics files (default: synthetic ones)")
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (the median is printed)")
    parser.add_argument("--ipv4", type=int, default=220_000, help="synthetic IPv4 blocks")
    parser.add_argument("--ipv6", type=int, default=70_000, help="synthetic IPv6 blocks")
    args = parser.parse_args()

    from callcore import contract, geo
    from security import ip_countries

    with tempfile.TemporaryDirectory() as directory:
        files = args.files or synthesise(directory, args.ipv4, args.ipv6)
        size = sum(Path(f).stat().st_size for f in files if not ip_countries.is_url(f))
        build = timed(lambda: ip_countries.build(files), args.runs)
    table_built = build[2]
    ranges = contract.decode_ip_countries(table_built.blob)
    ipv4, ipv6 = list(ranges.ranges(4)), list(ranges.ranges(6))
    encode = timed(lambda: contract.encode_ip_countries(ipv4, ipv6), args.runs)
    blob = encode[2]
    decode = timed(lambda: contract.decode_ip_countries(blob), args.runs)
    load = timed(lambda: geo.CountryTable.from_blob(blob, table_built.version), args.runs)
    table = load[2]
    raw_size = 18 + 2 * len(ranges.countries) + 10 * len(ipv4) + 18 * len(ipv6)

    rng = random.Random(7)
    sampled = samples(table, rng)
    baseline = ipaddress_lookup(table)
    rows = []
    for version in (4, 6):
        hits, misses = sampled[version]
        for kind, items in (("hit", hits), ("miss", misses)):
            if not items:
                continue
            assert all(table.country(ip) == baseline(ip) for ip in items[:2000])
            ours = per_second(table.country, items, args.runs)
            theirs = per_second(baseline, items, args.runs)
            rows.append((f"IPv{version} {kind}", ours, theirs))
    mapped = [f"::ffff:{ip}" for ip in sampled[4][0]]
    rows.append(("IPv4-mapped IPv6 hit", per_second(table.country, mapped, args.runs),
                 per_second(baseline, mapped, args.runs)))  # fmt: skip

    print()
    source = "synthetic" if not args.files else "given"
    print(f"data: {len(files)} {source} files, {size / 1e6:.1f} MB, {table_built.delegations:,} blocks with a country")
    print(
        f"table: {len(ipv4):,} IPv4 + {len(ipv6):,} IPv6 = {len(ipv4) + len(ipv6):,} ranges after merging, "
        f"{len(ranges.countries)} countries; {args.runs} runs per figure"
    )
    print(
        f"blob: {len(blob):,} bytes (packed {raw_size:,}, zlib level {contract.IP_COUNTRY_ZLIB_LEVEL}: "
        f"{raw_size / len(blob):.1f}x), {len(blob) / (len(ipv4) + len(ipv6)):.1f} bytes a range"
    )
    print()
    print(f"{'step':<58} {'median ms':>10} {'min ms':>8}")
    print("-" * 80)
    for step, figures in (
        ("import: read, check, merge, encode (ip_countries.build)", build),
        ("encode_ip_countries() alone", encode),
        ("call-core load: decode_ip_countries() (decompress, check)", decode),
        ("call-core load: CountryTable.from_blob() total", load),
    ):
        print(f"{step:<58} {figures[0]:>10.1f} {figures[1]:>8.1f}")
    print()
    print(f"{f'lookup ({LOOKUPS:,} addresses each)':<32} {'lookups/s':>12} {'ipaddress-based':>16}  ratio")
    print("-" * 80)
    for name, ours, theirs in rows:
        print(f"{name:<32} {ours:>12,.0f} {theirs:>16,.0f}  {ours / theirs:.1f}x")


if __name__ == "__main__":
    main()
