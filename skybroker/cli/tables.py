"""Plain aligned tables for the CLI.

No rich here: commands on the hot path (`sky status`, `sky launch --dryrun`) must start fast,
and rich alone costs ~55 ms of imports.
"""

from __future__ import annotations


def table(headers: list[str], rows: list[list[str]], right: tuple[int, ...] = ()) -> str:
    """Columns padded to their widest cell; columns listed in `right` are right-aligned."""
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]

    def fmt(r: list[str]) -> str:
        cells = [str(x).rjust(w) if i in right else str(x).ljust(w)
                 for i, (x, w) in enumerate(zip(r, widths))]
        return "  ".join(cells).rstrip()

    return "\n".join(fmt(r) for r in [headers, *rows])
