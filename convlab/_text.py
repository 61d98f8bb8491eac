"""Plain-text tables for the command line."""

from __future__ import annotations

from collections.abc import Sequence


def table(rows: Sequence[Sequence[str]], left: int | None = None) -> str:
    """Aligned columns, two spaces apart; the first row is the header.

    The first ``left`` columns are left-aligned and the rest right-aligned
    (numbers); by default every column is left-aligned.

    Examples
    --------
    >>> print(table([["name", "n"], ["numpy", "1"]]))
    name   n
    numpy  1
    >>> print(table([["name", "ms"], ["numpy", "1.5"], ["torch", "12"]], left=1))
    name    ms
    numpy  1.5
    torch   12
    """
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    left = len(widths) if left is None else left
    lines = []
    for row in rows:
        cells = [c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
