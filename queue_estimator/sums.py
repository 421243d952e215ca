"""Sums of 1 / (a + j * theta) over a run of j, in constant time.

Why: QL-m and the experts add one such term per caller ahead, several times for every
arrival and every wait poll, in every server process. With hundreds of callers waiting that
was most of a wait poll's CPU. The sum is a difference of digamma values; short runs are
still added term by term (the same floats as before, and no less exact).
"""

from __future__ import annotations

import math

DIRECT_TERMS = 32  # up to this many terms: add them
ASYMPTOTIC_FROM = 10.0  # the digamma series below is good to ~1e-15 from here
# Bernoulli terms of digamma's asymptotic series: psi(z) ~ ln z - 1/(2z) - sum c_k z^-2k.
_SERIES = (1 / 12, -1 / 120, 1 / 252, -1 / 240, 1 / 132, -691 / 32760)


def reciprocal_run(a: float, theta: float, lo: int, hi: int) -> float:
    """sum(1 / (a + j * theta) for j in range(lo, hi)), for a > 0 and theta >= 0."""
    count = hi - lo
    if count <= 0:
        return 0.0
    if count <= DIRECT_TERMS:
        return sum(1.0 / (a + j * theta) for j in range(lo, hi))
    if theta <= 0.0:
        return count / a
    # (psi(x + count) - psi(x)) / theta with x = a / theta + lo
    return _digamma_gap(a / theta + lo, count) / theta


def _digamma_gap(x: float, count: int) -> float:
    """psi(x + count) - psi(x) for x > 0: the first terms below ASYMPTOTIC_FROM one by one,
    then the asymptotic series, with the logarithms' difference taken as one log1p so
    that a large x loses no precision."""
    total = 0.0
    while x < ASYMPTOTIC_FROM and count > 0:
        total += 1.0 / x
        x += 1.0
        count -= 1
    if count == 0:
        return total
    y = x + count
    return total + math.log1p(count / x) + _tail(x) - _tail(y)


def _tail(z: float) -> float:
    """-(psi(z) - ln z): 1/(2z) + sum c_k z^-2k."""
    inv2 = 1.0 / (z * z)
    series, power = 0.0, 1.0
    for c in _SERIES:
        power *= inv2
        series += c * power
    return 0.5 / z + series
