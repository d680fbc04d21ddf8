"""Print the default committee size table of docs/committee.md: for each consortium size N,
the smallest k with P[X >= ceil(k/3)] <= 1e-6, X ~ Hypergeometric(N, f, k), for
f = floor(N/10), floor(N/5) and floor(N/3) - 1 (k = N where nothing smaller meets it).

    python scripts/committee_table.py
"""

from __future__ import annotations

from node.consensus.committee import byzantine_tail, committee_size

SIZES = (4, 6, 8, 10, 12, 16, 20, 24, 32, 48, 64, 96, 128, 160, 192, 224, 256)


def _faults(n: int) -> tuple[int, int, int]:
    return n // 10, n // 5, max(0, n // 3 - 1)


def main() -> None:
    print("| N | f = N/10: k (tail) | f = N/5: k (tail) | f = N/3 - 1: k (tail) |")
    print("|---|---|---|---|")
    for n in SIZES:
        cells = []
        for f in _faults(n):
            k = committee_size(n, f)
            cells.append(f"f={f}: **{k}** ({float(byzantine_tail(n, f, k)):.1e})")
        print(f"| {n} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
