"""`Offer` (one row) and `OfferTable` (columnar numpy arrays): the catalog contract.

Why columns: the optimizer asks "which of ~100k offers have >= 8 A100s, >= 32 vCPUs and a
spot price in us-*?" for every task; that is a handful of vectorised comparisons over arrays
(milliseconds), where a list of dataclasses would take tens of milliseconds per query.
Missing numbers are NaN (price NaN = not offered on-demand; spot_price NaN = no spot);
missing strings are "" in the arrays and None in `Offer`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

STR_COLUMNS = ("cloud", "region", "zone", "instance_type", "accelerator_name", "arch")
FLOAT_COLUMNS = ("vcpus", "memory_gib", "accelerator_count", "accelerator_memory_gib",
                 "price", "spot_price")
COLUMNS = ("cloud", "region", "zone", "instance_type", "vcpus", "memory_gib",
           "accelerator_name", "accelerator_count", "accelerator_memory_gib", "arch",
           "price", "spot_price")
# The CSV schema of catalogs/<cloud>.csv (no cloud column: the file name says it).
CSV_COLUMNS = ("instance_type", "vcpus", "memory_gib", "accelerator_name", "accelerator_count",
               "accelerator_memory_gib", "arch", "region", "zone", "price", "spot_price")


@dataclass(frozen=True)
class Offer:
    """One purchasable shape at one place. None means "absent" (no GPU, no spot, no zone)."""

    cloud: str
    region: str
    zone: str | None
    instance_type: str
    vcpus: float | None
    memory_gib: float | None
    accelerator_name: str | None
    accelerator_count: float | None
    accelerator_memory_gib: float | None
    arch: str
    price: float | None
    spot_price: float | None

    @property
    def accelerators(self) -> dict[str, float]:
        """{name: count} as in Resources (empty when the offer has no accelerator)."""
        if not self.accelerator_name:
            return {}
        return {self.accelerator_name: self.accelerator_count or 1}

    def hourly_price(self, spot: bool) -> float | None:
        return self.spot_price if spot else self.price

    def to_dict(self) -> dict[str, Any]:
        return {c: getattr(self, c) for c in COLUMNS}


def categorical(col: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(sorted vocabulary, int32 codes) of strings; a dict pass, no sort of the whole column."""
    seen: dict[str, int] = {}
    values = col.tolist() if isinstance(col, np.ndarray) else col
    codes = np.fromiter((seen.setdefault(str(x).strip(), len(seen)) for x in values),
                        dtype=np.int32, count=len(values))
    vocab = np.array(list(seen), dtype=str) if seen else np.array([""], dtype=str)
    order = np.argsort(vocab, kind="stable")
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    return vocab[order], rank[codes]


def _none_if_nan(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


class OfferTable:
    """Columns of equal length; row selection returns a new table.

    String columns are held categorically (sorted vocabulary + int32 codes): string filters
    become an integer gather, `take`/`concat` never copy long unicode arrays, and the compiled
    cache loads in a few ms. `t.region` / `t["region"]` decode to a numpy unicode array on
    first access (memoized); numeric columns are float64 arrays with NaN for "absent".
    Select rows with a boolean mask, an index array or a slice: `t[t.price < 3]`,
    `t.take(np.argsort(t.price))`.
    """

    __slots__ = ("_cat", "_num", "_dec", "_n")

    def __init__(self, columns: dict[str, np.ndarray]) -> None:
        missing = set(COLUMNS) - set(columns)
        if missing:
            raise ValueError(f"missing columns: {sorted(missing)}")
        lengths = {len(columns[c]) for c in COLUMNS}
        if len(lengths) > 1:
            raise ValueError(f"columns of unequal length: {sorted(lengths)}")
        cat = {c: categorical(columns[c]) for c in STR_COLUMNS}
        num = {c: np.asarray(columns[c], dtype=np.float64) for c in FLOAT_COLUMNS}
        self._init(cat, num)

    def _init(self, cat: dict[str, tuple[np.ndarray, np.ndarray]],
              num: dict[str, np.ndarray]) -> None:
        self._cat, self._num, self._dec = cat, num, {}
        self._n = len(num["price"])

    @classmethod
    def from_parts(cls, cat: dict[str, tuple[np.ndarray, np.ndarray]],
                   num: dict[str, np.ndarray]) -> OfferTable:
        """From (sorted unique vocabulary, codes) per string column and float arrays."""
        t = cls.__new__(cls)
        t._init(cat, num)
        return t

    # ---- construction
    @classmethod
    def empty(cls) -> OfferTable:
        cols = {c: np.array([], dtype=str) for c in STR_COLUMNS}
        cols.update({c: np.array([], dtype=np.float64) for c in FLOAT_COLUMNS})
        return cls(cols)

    @classmethod
    def from_records(cls, records: Iterable[dict[str, Any]]) -> OfferTable:
        """Build from dicts (e.g. `Offer.to_dict()`); None becomes "" / NaN."""
        rows = list(records)
        if not rows:
            return cls.empty()
        cols: dict[str, np.ndarray] = {}
        for c in STR_COLUMNS:
            cols[c] = np.array([r.get(c) or "" for r in rows], dtype=str)
        for c in FLOAT_COLUMNS:
            cols[c] = np.array([np.nan if r.get(c) is None else r[c] for r in rows],
                               dtype=np.float64)
        return cls(cols)

    @staticmethod
    def concat(tables: Sequence[OfferTable]) -> OfferTable:
        """Rows of all tables in order (vocabularies merged, codes remapped)."""
        tables = [t for t in tables if len(t)]
        if not tables:
            return OfferTable.empty()
        if len(tables) == 1:
            return tables[0]
        cat = {}
        for c in STR_COLUMNS:
            union = np.unique(np.concatenate([t._cat[c][0] for t in tables]))
            codes = [np.searchsorted(union, t._cat[c][0]).astype(np.int32)[t._cat[c][1]]
                     for t in tables]
            cat[c] = (union, np.concatenate(codes))
        num = {c: np.concatenate([t._num[c] for t in tables]) for c in FLOAT_COLUMNS}
        return OfferTable.from_parts(cat, num)

    # ---- access
    def __len__(self) -> int:
        return self._n

    def column(self, name: str) -> np.ndarray:
        """A column as a numpy array (strings decoded once and memoized)."""
        if name in self._num:
            return self._num[name]
        if name in self._dec:
            return self._dec[name]
        if name not in self._cat:
            raise KeyError(name)
        vocab, codes = self._cat[name]
        arr = vocab[codes] if len(codes) else np.array([], dtype=str)
        self._dec[name] = arr
        return arr

    def categories(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(sorted vocabulary, int32 codes) of a string column, for fast group-bys."""
        return self._cat[name]

    def unique(self, name: str) -> list[str]:
        """Distinct values present in a string column, sorted."""
        vocab, codes = self._cat[name]
        return vocab[np.unique(codes)].tolist() if len(codes) else []

    @property
    def columns(self) -> dict[str, np.ndarray]:
        return {c: self.column(c) for c in COLUMNS}

    def __getattr__(self, name: str) -> np.ndarray:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self.column(name)
        except KeyError:
            raise AttributeError(f"OfferTable has no column {name!r}") from None

    def __getitem__(self, key: Any) -> Any:
        """`t["price"]` -> column; `t[3]` -> Offer; mask / indices / slice -> OfferTable."""
        if isinstance(key, str):
            return self.column(key)
        if isinstance(key, (int, np.integer)):
            return self.offer(int(key))
        if not isinstance(key, slice):
            key = np.asarray(key)
        cat = {c: (v, k[key]) for c, (v, k) in self._cat.items()}
        return OfferTable.from_parts(cat, {c: a[key] for c, a in self._num.items()})

    def take(self, idx: Any) -> OfferTable:
        """Rows at `idx` (int array, boolean mask or slice), in that order."""
        return self[idx]

    def _s(self, name: str, i: int) -> str:
        vocab, codes = self._cat[name]
        return str(vocab[codes[i]])

    def _f(self, name: str, i: int) -> float | None:
        return _none_if_nan(self._num[name][i])

    def offer(self, i: int) -> Offer:
        return Offer(
            cloud=self._s("cloud", i), region=self._s("region", i),
            zone=self._s("zone", i) or None, instance_type=self._s("instance_type", i),
            vcpus=self._f("vcpus", i), memory_gib=self._f("memory_gib", i),
            accelerator_name=self._s("accelerator_name", i) or None,
            accelerator_count=self._f("accelerator_count", i),
            accelerator_memory_gib=self._f("accelerator_memory_gib", i),
            arch=self._s("arch", i), price=self._f("price", i),
            spot_price=self._f("spot_price", i),
        )

    def __iter__(self) -> Iterator[Offer]:
        return (self.offer(i) for i in range(len(self)))

    def to_records(self) -> list[dict[str, Any]]:
        return [o.to_dict() for o in self]

    def __repr__(self) -> str:
        return f"<OfferTable {len(self)} offers, clouds={self.unique('cloud')}>"

    def isin(self, name: str, values: str | Iterable[str]) -> np.ndarray:
        """Boolean mask: string column `name` equals `values` (a string or a collection)."""
        vocab, codes = self._cat[name]
        if not len(codes):
            return np.zeros(0, dtype=bool)
        if isinstance(values, str):
            lut = vocab == values
        else:
            wanted = set(values)
            lut = np.fromiter((v in wanted for v in vocab.tolist()), dtype=bool, count=len(vocab))
        return lut[codes]

    # ---- queries (all vectorised; each returns a boolean mask)
    def mask(
        self,
        *,
        cloud: str | Iterable[str] | None = None,
        region: str | Iterable[str] | None = None,
        zone: str | Iterable[str] | None = None,
        instance_type: str | Iterable[str] | None = None,
        accelerator: str | None = None,
        accelerator_count: float | None = None,
        min_accelerator_count: float | None = None,
        min_vcpus: float | None = None,
        vcpus: float | None = None,
        min_memory_gib: float | None = None,
        memory_gib: float | None = None,
        arch: str | None = None,
        spot: bool | None = None,
        on_demand: bool | None = None,
    ) -> np.ndarray:
        """AND of the given criteria. `accelerator=""` means "no accelerator".

        `accelerator` must be canonical (see `canonical_accelerator`); `spot=True` keeps rows
        with a spot price, `on_demand=True` rows with an on-demand price.
        """
        m = np.ones(len(self), dtype=bool)
        for col, want in (("cloud", cloud), ("region", region), ("zone", zone),
                          ("instance_type", instance_type), ("arch", arch)):
            if want is None:
                continue
            m &= self.isin(col, want)
        if accelerator is not None:
            m &= self.isin("accelerator_name", accelerator)
        if accelerator_count is not None:
            m &= self._num["accelerator_count"] == accelerator_count
        if min_accelerator_count is not None:
            m &= self._num["accelerator_count"] >= min_accelerator_count
        if vcpus is not None:
            m &= self._num["vcpus"] == vcpus
        if min_vcpus is not None:
            m &= self._num["vcpus"] >= min_vcpus
        if memory_gib is not None:
            m &= self._num["memory_gib"] == memory_gib
        if min_memory_gib is not None:
            m &= self._num["memory_gib"] >= min_memory_gib
        if spot is not None:
            m &= ~np.isnan(self._num["spot_price"]) == spot
        if on_demand is not None:
            m &= ~np.isnan(self._num["price"]) == on_demand
        return m

    def select(self, **criteria: Any) -> OfferTable:
        """Rows matching `mask(**criteria)`."""
        return self[self.mask(**criteria)]

    def sort_by_price(self, spot: bool = False) -> OfferTable:
        """Cheapest first; rows without that price go last (stable order otherwise)."""
        key = self._num["spot_price" if spot else "price"]
        return self.take(np.argsort(np.where(np.isnan(key), np.inf, key), kind="stable"))

    def accelerator_names(self) -> list[str]:
        return [n for n in self.unique("accelerator_name") if n]
