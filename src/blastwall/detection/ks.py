"""The two-sample Kolmogorov–Smirnov test with numpy alone: the statistic and its two-sided
p-value by the asymptotic method, the one of `scipy.stats.ks_2samp(a, b, method="asymp")`.

The statistic D is the largest distance between the two samples' empirical distribution
functions. Its p-value is the tail P(D_n >= D) of the one-sample Kolmogorov distribution
with n = round(n1 n2 / (n1 + n2)), each region computed as Simard and L'Ecuyer (2011)
choose: exact at the edges (Ruben and Gambino), twice the one-sided tail of Birnbaum and
Tingey in the upper tail (Miller's approximation), Durbin's matrix (Marsaglia, Tsang and
Wang 2003) for small n D², the Pelz–Good series for large n elsewhere. Where scipy uses
Pomeranz's recursion (n <= 140, n D² up to 4) Durbin's matrix serves: both are exact.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["kolmogorov_sf", "ks_2samp"]

_STIRLING = [  # B_2j / (2j (2j - 1)), j = 8 .. 1
    -2.955065359477124183e-2,
    6.4102564102564102564e-3,
    -1.9175269175269175269e-3,
    8.4175084175084175084e-4,
    -5.952380952380952381e-4,
    7.9365079365079365079e-4,
    -2.7777777777777777778e-3,
    8.3333333333333333333e-2,
]


def ks_2samp(a: ArrayLike, b: ArrayLike) -> tuple[float, float]:
    """(D, two-sided asymptotic p-value) of two non-empty samples."""
    first, second = np.sort(np.asarray(a, dtype=float)), np.sort(np.asarray(b, dtype=float))
    n1, n2 = len(first), len(second)
    if not n1 or not n2:
        raise ValueError("the Kolmogorov–Smirnov test needs values in both samples")
    both = np.concatenate([first, second])
    gaps = (
        np.searchsorted(first, both, side="right") / n1
        - np.searchsorted(second, both, side="right") / n2
    )
    statistic = float(max(gaps.max(), -gaps.min(), 0.0))
    big, small = max(n1, n2), min(n1, n2)
    n = round(float(big) * float(small) / (big + small))
    return statistic, kolmogorov_sf(n, statistic)


def kolmogorov_sf(n: int, x: float) -> float:
    """P(D_n >= x) for the two-sided one-sample Kolmogorov–Smirnov statistic D_n."""
    if x >= 1.0:
        return 0.0
    if x <= 0.0:
        return 1.0
    t = n * x
    if t <= 1.0:  # Ruben–Gambino: 1/2n <= x <= 1/n
        if t <= 0.5:
            return 1.0
        if n <= 140:
            inside = float(np.prod(np.arange(1, n + 1) * (1.0 / n) * (2 * t - 1)))
        else:
            inside = math.exp(_log_factorial_over_power(n) + n * math.log(2 * t - 1))
        return _clip(1.0 - inside)
    if t >= n - 1:  # Ruben–Gambino
        return _clip(2 * (1.0 - x) ** n)
    nx2 = t * x
    if x >= 0.5 or (n <= 140 and nx2 > 4) or (n > 140 and nx2 >= 2.2):
        return 0.0 if n > 140 and nx2 >= 370 else _clip(2 * _smirnov(n, x))
    if n <= 140 or (n <= 100_000 and n * x**1.5 <= 1.4):
        return _clip(1.0 - _durbin_cdf(n, x))
    return _clip(1.0 - _pelz_good_cdf(n, x))


def _clip(p: float) -> float:
    return min(max(p, 0.0), 1.0)


def _log_factorial_over_power(n: int) -> float:
    """log(n! / n^n), by Stirling's series without the cancelling n log n."""
    r = 1.0 / n
    series = float(np.polyval(_STIRLING, r / n))
    return math.log(n) / 2 - n + math.log(2 * math.pi) / 2 + r * series


def _smirnov(n: int, x: float) -> float:
    """P(D+_n >= x), the one-sided tail, by the exact sum of Birnbaum and Tingey (1951)."""
    j = np.arange(0, math.floor(n * (1 - x)) + 1, dtype=float)
    j = j[1 - x - j / n > 0]
    log_choose = np.concatenate([[0.0], np.cumsum(np.log((n - j[1:] + 1) / j[1:]))])
    terms = log_choose + (n - j) * np.log(1 - x - j / n) + (j - 1) * np.log(x + j / n)
    top = float(terms.max())
    return float(x * math.exp(top) * np.exp(terms - top).sum())


def _durbin_cdf(n: int, x: float) -> float:
    """P(D_n < x) by Durbin's matrix, computed as Marsaglia, Tsang and Wang (2003) do."""
    k = math.ceil(n * x)
    h = k - n * x
    m = 2 * k - 1
    steps = np.arange(1, m + 1)
    inverse_factorials = np.concatenate([[1.0], np.cumprod(1.0 / steps)])
    v = (1.0 - h**steps) * inverse_factorials[1:]
    v[-1] = (1.0 + max(2 * h - 1.0, 0) ** m - 2 * h**m) * inverse_factorials[m]
    matrix = np.zeros((m, m))
    for i in range(1, m):
        matrix[i - 1 :, i] = inverse_factorials[: m - i + 1]
    matrix[:, 0] = v
    matrix[-1, :] = v[::-1]
    power, log_scale, log_power_scale, left = np.eye(m), 0.0, 0.0, n
    while left:  # matrix ** n by squaring, rescaled so that nothing overflows
        if left % 2:
            power = power @ matrix
            log_power_scale += log_scale
            biggest = float(np.abs(power).max())
            power /= biggest
            log_power_scale += math.log(biggest)
        matrix = matrix @ matrix
        log_scale *= 2
        biggest = float(np.abs(matrix).max())
        matrix /= biggest
        log_scale += math.log(biggest)
        left //= 2
    entry = float(power[k - 1, k - 1])
    if entry <= 0:
        return 0.0
    return math.exp(math.log(entry) + log_power_scale + _log_factorial_over_power(n))


def _pelz_good_cdf(n: int, x: float) -> float:
    """P(D_n <= x) by the series of Pelz and Good (1976), for large n."""
    z = math.sqrt(n) * x
    z2, z3, z4, z6 = z**2, z**3, z**4, z**6
    pi2, pi4, pi6 = math.pi**2, math.pi**4, math.pi**6
    log_q = -pi2 / 8 / z2
    if log_q < -708:
        return 0.0
    q = math.exp(log_q)
    top = math.ceil(16 * z / math.pi)
    sums: NDArray[np.float64] = np.zeros(4)
    for k in range(top, 0, -1):  # Horner over the odd integers m = 2k - 1
        m2 = (2 * k - 1) ** 2
        coefficients = np.array(
            [
                1.0,
                -z2 + pi2 / 4 * m2,
                6 * z6
                + 2 * z4
                + (2 * z4 - 5 * z2) * pi2 / 4 * m2
                + pi4 * (1 - 2 * z2) / 16 * m2**2,
                -30 * z6
                - 90 * z**8
                + pi2 * (135 * z4 - 96 * z6) / 4 * m2
                + pi4 * (-60 * z2 + 212 * z4) / 16 * m2**2
                + pi6 * (5 - 30 * z2) / 64 * m2**3,
            ]
        )
        sums = sums * q ** (8 * k) + coefficients
    sums *= q * math.sqrt(2 * math.pi)
    sums /= np.array([z, 6 * z4, 72 * z**7, 6480 * z**10])
    q = math.exp(-pi2 / 2 / z2)
    ks = np.arange(top, 0, -1, dtype=float)
    weights = ks**2 * q ** (ks**2)
    sums[2] += float(weights.sum()) * pi2 * math.sqrt(2 * math.pi) / (-36 * z3)
    spread = (math.sqrt(3) * z + math.pi * ks) * (math.sqrt(3) * z - math.pi * ks)
    sums[3] += float((spread * weights).sum()) * pi2 * math.sqrt(2 * math.pi) / (216 * z6)
    return float((sums / np.power(float(n), np.arange(4) / 2.0)).sum())
