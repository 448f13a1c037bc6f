"""Textbook formulas for the benchmark's statistics, written out by hand for the tests."""

from __future__ import annotations

import math


def wilson_by_hand(successes: int, total: int, z: float = 1.959963984540054):
    """Wilson's 95 % score interval in its closed form."""
    share = successes / total
    denominator = 1 + z * z / total
    centre = (share + z * z / (2 * total)) / denominator
    half = z * math.sqrt(share * (1 - share) / total + z * z / (4 * total * total)) / denominator
    return centre - half, centre + half


def fisher_greater_by_hand(k1: int, n1: int, k2: int, n2: int) -> float:
    """P(X >= k1) for X hypergeometric: n1 draws from n1 + n2 items of which k1 + k2 succeed."""
    successes, total = k1 + k2, n1 + n2
    return sum(math.comb(successes, x) * math.comb(total - successes, n1 - x)
               for x in range(k1, min(n1, successes) + 1)) / math.comb(total, n1)
