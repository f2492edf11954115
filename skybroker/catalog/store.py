"""Finding, parsing and caching catalog files.

Lookup order for `<cloud>.csv` (first hit wins):
  1. `<home>/catalogs/<cloud>.csv`   the user's refreshed catalog (`sky catalog refresh`)
  2. `$SKYBROKER_CATALOG_DIR`        when set, the only shipped dir searched (tests, odd installs)
  3. `<repo>/catalogs/`              next to the package (source checkout, `pip install -e .`)
  4. `<sys.prefix>/share/skybroker/catalogs/` (setup.cfg data_files, `pip install .`), then
     `skybroker/catalog/data/` (if a packager copies the CSVs into the package)

The CSV is the source of truth. Parsing 57k rows costs a few hundred ms, so the first load
writes a compiled file under `<home>/cache/catalog/`, named by the CSV's path, size and mtime:
editing or replacing the CSV changes the name, so a stale cache is never read. It is four raw
`.npy` arrays, 64-byte aligned (floats, string codes, vocabularies, vocabulary sizes): no zip,
no pickle, strings stay categorical, and it is memory-mapped read-only, so a cold process
"loads" all clouds in about a millisecond and pages in only the columns a query touches.
"""

from __future__ import annotations

import contextlib
import os
import sys
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from skybroker.catalog.table import (
    CSV_COLUMNS,
    FLOAT_COLUMNS,
    STR_COLUMNS,
    OfferTable,
    categorical,
)
from skybroker.errors import CatalogError

if TYPE_CHECKING:  # csv, json, datetime and hashlib stay off the cached cold path
    import datetime as dt

CATALOG_DIR_ENV = "SKYBROKER_CATALOG_DIR"
CACHE_VERSION = 2
KNOWN_CLOUDS = ("aws", "gcp", "azure", "local")
_REQUIRED = ("instance_type", "region", "price")
_MEMO: dict[tuple[str, int, int], OfferTable] = {}


def user_catalog_dir() -> Path:
    from skybroker import config

    return config.home() / "catalogs"


def shipped_catalog_dirs() -> list[Path]:
    """Candidate directories of the shipped catalogs, most specific first."""
    env = os.environ.get(CATALOG_DIR_ENV)
    if env:  # an explicit override replaces the search (hermetic tests, custom installs)
        return [Path(env).expanduser()]
    return _default_dirs()


def _default_dirs() -> list[Path]:
    global _DEFAULT_DIRS
    if _DEFAULT_DIRS is None:  # computed once: realpath() costs ms on the cold path
        here = Path(os.path.realpath(__file__)).parent
        _DEFAULT_DIRS = [here.parent.parent / "catalogs",
                         Path(sys.prefix) / "share" / "skybroker" / "catalogs",
                         here / "data"]
    return list(_DEFAULT_DIRS)


_DEFAULT_DIRS: list[Path] | None = None


def catalog_path(cloud: str) -> Path:
    """The CSV that `load_catalog(cloud)` reads (user's refreshed one first)."""
    for d in [user_catalog_dir(), *shipped_catalog_dirs()]:
        p = d / f"{cloud}.csv"
        if p.is_file():
            return p
    raise CatalogError(
        f"No catalog for cloud {cloud!r}.",
        hint=f"Looked in {user_catalog_dir()} and {', '.join(map(str, shipped_catalog_dirs()))}; "
             f"set {CATALOG_DIR_ENV} to the directory holding <cloud>.csv.",
    )


def available_clouds() -> list[str]:
    """Known clouds that have a catalog file somewhere on the lookup path."""
    out = []
    for cloud in KNOWN_CLOUDS:
        try:
            catalog_path(cloud)
        except CatalogError:
            continue
        out.append(cloud)
    return out


# --------------------------------------------------------------------------------- parsing

_NAN = float("nan")


def _floats(col: Sequence[str], path: Path, name: str) -> np.ndarray:
    try:
        return np.array([float(x) if x else _NAN for x in col], dtype=np.float64)
    except ValueError as e:
        raise CatalogError(f"{path}: column {name!r} has a non-numeric value ({e})") from None


def _read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows; plain split when nothing is quoted (our own files), else csv."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise CatalogError(f"Cannot read catalog {path}: {e}") from None
    if '"' not in text:
        lines = text.splitlines()
        rows = [line.split(",") for line in lines[1:] if line]
        header = lines[0].split(",") if lines else []
    else:
        import csv
        import io

        reader = csv.reader(io.StringIO(text))
        header = next(reader, [])
        rows = [r for r in reader if r]
    return [h.strip() for h in header], rows


def parse_csv(path: Path, cloud: str) -> OfferTable:
    """Parse a catalog CSV (our schema, columns by header name, extra columns ignored)."""
    header, rows = _read_rows(path)
    missing = [c for c in _REQUIRED if c not in header]
    if missing:
        raise CatalogError(f"{path}: missing column(s) {', '.join(missing)}",
                           hint=f"Expected header: {','.join(CSV_COLUMNS)}")
    width = len(header)
    n = len(rows)
    ragged = [r for r in rows if len(r) != width]
    if ragged:
        rows = [r[:width] + [""] * (width - len(r)) for r in rows]
    cells = list(zip(*rows, strict=True)) if rows else [()] * width
    index = {name: i for i, name in enumerate(header)}
    cat: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    num: dict[str, np.ndarray] = {}
    for name in CSV_COLUMNS:
        col: Sequence[str] = cells[index[name]] if name in index else [""] * n
        if name in FLOAT_COLUMNS:
            num[name] = _floats(col, path, name)
        else:
            if name == "arch" and name not in index:
                col = ["x86_64"] * n
            cat[name] = categorical(col)
    cat["cloud"] = (np.array([cloud]), np.zeros(n, dtype=np.int32))
    return OfferTable.from_parts(cat, num)


# ---------------------------------------------------------------------------------- caching

def cache_dir() -> Path:
    from skybroker import config

    return config.home() / "cache" / "catalog"


def _cache_file(path: Path, cloud: str) -> tuple[Path, str]:
    st = path.stat()
    tag = f"{zlib.crc32(os.path.abspath(path).encode()):08x}"
    prefix = f"{cloud}-{tag}-"
    return cache_dir() / f"{prefix}{st.st_size}-{st.st_mtime_ns}-v{CACHE_VERSION}.npy", prefix


_CACHED_STR = STR_COLUMNS


_ALIGN = 64  # every array starts on a 64-byte boundary, so mapped columns are aligned


def _write_cache(table: OfferTable, target: Path, prefix: str) -> None:
    """Four .npy arrays, each 64-byte aligned: floats (k,n), codes (k,n), vocabularies, sizes."""
    floats = np.stack([table.column(c) for c in FLOAT_COLUMNS]) if len(table) else \
        np.zeros((len(FLOAT_COLUMNS), 0))
    parts = [table.categories(c) for c in _CACHED_STR]
    codes = np.stack([k for _, k in parts]).astype(np.int32) if len(table) else \
        np.zeros((len(_CACHED_STR), 0), np.int32)
    vocab = np.concatenate([v for v, _ in parts]).astype(str)
    sizes = np.array([len(v) for v, _ in parts], dtype=np.int64)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        for arr in (floats, codes, vocab, sizes):
            fh.write(b"\0" * (-fh.tell() % _ALIGN))
            np.lib.format.write_array(fh, np.ascontiguousarray(arr), allow_pickle=False)
    os.replace(tmp, target)
    for old in target.parent.glob(f"{prefix}*"):  # older versions of the same CSV
        if old != target:
            old.unlink(missing_ok=True)


def _map_arrays(target: Path, count: int) -> list[np.ndarray]:
    """The arrays of a cache file, memory-mapped read-only (pages load only when touched)."""
    import mmap

    fmt = np.lib.format
    out = []
    with open(target, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        for _ in range(count):
            fh.seek(fh.tell() + (-fh.tell() % _ALIGN))
            version = fmt.read_magic(fh)
            header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, fortran, dtype = header(fh)
            n = int(np.prod(shape))
            offset = fh.tell()
            if fortran or dtype.hasobject or offset + n * dtype.itemsize > size:
                raise ValueError("not a cache file of this version")
            out.append(np.frombuffer(mm, dtype=dtype, count=n, offset=offset).reshape(shape))
            fh.seek(offset + n * dtype.itemsize)
    return out


def _read_cache(target: Path, cloud: str) -> OfferTable | None:
    try:
        floats, codes, vocab, sizes = _map_arrays(target, 4)
    except (OSError, ValueError, EOFError):
        return None  # corrupt or foreign cache: reparse
    n = floats.shape[1] if floats.ndim == 2 else -1
    if (floats.shape[0] != len(FLOAT_COLUMNS) or codes.shape != (len(_CACHED_STR), n)
            or len(sizes) != len(_CACHED_STR) or int(sizes.sum()) != len(vocab)):
        return None  # written by another version, or truncated
    num = {c: floats[i] for i, c in enumerate(FLOAT_COLUMNS)}
    cat = {}
    ends = np.cumsum(sizes)
    for i, c in enumerate(_CACHED_STR):
        cat[c] = (vocab[ends[i] - sizes[i]:ends[i]], codes[i])
    if cloud:  # a single-cloud file: the file name is the truth, whatever the cache says
        cat["cloud"] = (np.array([cloud]), np.zeros(n, dtype=np.int32))
    return OfferTable.from_parts(cat, num)


def _cached_load(key: tuple, target: Path, prefix: str, cloud: str, build) -> OfferTable:
    """Memo, then compiled cache file, then `build()` (which is then written to the cache)."""
    if key in _MEMO:
        return _MEMO[key]
    table = _read_cache(target, cloud) if target.exists() else None
    if table is None:
        table = build()
        with contextlib.suppress(OSError):  # a read-only home still works, just slower
            _write_cache(table, target, prefix)
        for c in FLOAT_COLUMNS:  # as read-only as a mapped one: the memo shares it
            table.column(c).setflags(write=False)
    if len(_MEMO) > 32:  # a long-lived process (controller) sees many catalog versions
        _MEMO.clear()
    _MEMO[key] = table
    return table


def load_catalog(cloud: str, path: Path | None = None, use_cache: bool = True) -> OfferTable:
    """The offer table of one cloud (compiled cache if fresh, else parse and write it)."""
    cloud = cloud.lower()
    path = Path(path) if path else catalog_path(cloud)
    if not use_cache:
        return parse_csv(path, cloud)
    st = path.stat()
    target, prefix = _cache_file(path, cloud)
    return _cached_load((str(path), st.st_size, st.st_mtime_ns), target, prefix, cloud,
                        lambda: parse_csv(path, cloud))


def load_catalogs(clouds: list[str] | tuple[str, ...] | None = None,
                  missing_ok: bool = False) -> OfferTable:
    """One table over several clouds (default: every cloud that has a catalog).

    The concatenation is cached too (keyed by every member's cache name), so a cold process
    reads one file instead of merging vocabularies and copying ~100k rows each time.
    """
    clouds = [c.lower() for c in clouds] if clouds is not None else available_clouds()
    found: list[tuple[str, Path]] = []
    for cloud in clouds:
        try:
            found.append((cloud, catalog_path(cloud)))
        except CatalogError:
            if not missing_ok:
                raise
    if len(found) == 1:
        return load_catalog(found[0][0], found[0][1])
    if not found:
        return OfferTable.empty()
    names = [_cache_file(p, c)[0].name for c, p in found]
    digest = f"{zlib.crc32('|'.join(names).encode()):08x}"
    prefix = "multi-" + "+".join(c for c, _ in found) + "-"
    target = cache_dir() / f"{prefix}{digest}-v{CACHE_VERSION}.npy"
    table = _cached_load(("multi", digest), target, prefix, "", lambda: OfferTable.concat(
        [load_catalog(c, p) for c, p in found]))
    return table


# ------------------------------------------------------------------------- provenance / age

@dataclass(frozen=True)
class CatalogInfo:
    """Where a cloud's prices come from and how old they are (unpacks as a 4-tuple)."""

    path: Path
    source: str
    date: dt.date | None
    age: dt.timedelta | None

    def __iter__(self):
        return iter((self.path, self.source, self.date, self.age))

    @property
    def age_days(self) -> int | None:
        return None if self.age is None else self.age.days

    def describe(self) -> str:
        """One line for the CLI: 'aws: prices from <source>, 2026-01-21 (305 days old)'."""
        when = "unknown date"
        if self.date is not None:
            when = f"{self.date.isoformat()}"
            if self.age is not None:
                when += f" ({self.age.days} days old)"
        return f"prices from {self.source}, {when}"


def _parse_date(text: str | None) -> dt.date | None:
    import datetime as dt

    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00")).date()
    except ValueError:
        try:
            return dt.date.fromisoformat(str(text)[:10])
        except ValueError:
            return None


def catalog_info(cloud: str, today: dt.date | None = None) -> CatalogInfo:
    """Path, source, date and age of the catalog `load_catalog(cloud)` would read.

    Source and date come from `SOURCES.json` next to the CSV (written by the build script and
    by `sky catalog refresh`); without one, the file's mtime is the date.
    """
    import datetime as dt
    import json

    path = catalog_path(cloud)
    meta: dict = {}
    sources = path.parent / "SOURCES.json"
    if sources.is_file():
        try:
            meta = json.loads(sources.read_text()).get(cloud, {}) or {}
        except (OSError, ValueError, AttributeError):
            meta = {}
    date = _parse_date(meta.get("refreshed_at") or meta.get("date"))
    if date is None:
        date = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc).date()
    source = str(meta.get("source") or f"{path}")
    today = today or dt.datetime.now(dt.timezone.utc).date()
    return CatalogInfo(path=path, source=source, date=date, age=today - date)


def aws_zone_ids() -> dict[str, str]:
    """Zone name (as in the AWS catalog) -> AZ id. Names are per account; ids are global."""
    import json

    for d in [*shipped_catalog_dirs(), *_default_dirs()]:  # a fixed table, not a catalog
        p = d / "aws_zone_ids.json"
        if p.is_file():
            return {name: zid for zid, name in json.loads(p.read_text())["zone_names"].items()}
    return {}
