"""The two-sample Kolmogorov–Smirnov test of the drift detector against the values of
`scipy.stats` (`kstwo.sf`, `ks_2samp(method="asymp")`, scipy 1.17.1), computed once and
written down here: one case per region of the one-sample distribution's tail."""

from __future__ import annotations

import pytest

from blastwall.detection.ks import kolmogorov_sf, ks_2samp

TAILS = [  # n, x, P(D_n >= x)
    (5, 0.19, 0.977325184),  # n x <= 1 (Ruben–Gambino)
    (10, 0.05, 1.0),
    (10, 0.95, 1.9531250000000172e-13),  # n x >= n - 1 (Ruben–Gambino)
    (3, 0.4, 0.5946666666666665),  # n <= 140: Durbin
    (10, 0.2, 0.7487190399999999),
    (50, 0.1, 0.6623112704658186),
    (50, 0.2, 0.03143877776953241),  # n <= 140, scipy by Pomeranz
    (140, 0.1, 0.11353657290090946),
    (10, 0.5, 0.00777741),  # x >= 1/2: twice the one-sided tail
    (100, 0.3, 1.7719869892662917e-08),
    (143, 0.99, 2.000000000000254e-286),
    (143, 0.03, 0.9991169906712425),  # n > 140, n x^1.5 <= 1.4: Durbin
    (150, 0.04, 0.9622260690500474),
    (143, 0.05, 0.8491978469617472),  # n > 140: Pelz–Good
    (143, 0.1, 0.10691328892387364),
    (20000, 0.002, 0.9999979895410975),
    (200000, 0.002, 0.39995085369038097),
    (143, 0.2, 1.7253614933574407e-05),  # n > 140, n x^2 >= 2.2: twice the one-sided tail
    (1000, 0.05, 0.013012074781090332),
    (143, 0.005, 1.0),
]


@pytest.mark.parametrize(("n", "x", "expected"), TAILS)
def test_the_tail_is_scipys(n: int, x: float, expected: float) -> None:
    assert kolmogorov_sf(n, x) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def samples() -> list[tuple[list[float], list[float], float, float]]:
    """(first, second, statistic, p-value) as scipy's ks_2samp(method="asymp") gives them."""
    lengths = [float(100 + (i * 37) % 200) for i in range(500)]
    longer = [float(160 + (i * 53) % 260) for i in range(200)]
    ties = [float((i * 7) % 11) for i in range(300)]
    other_ties = [float((i * 5) % 12) for i in range(120)]
    return [
        ([1.0, 2.0, 3.0, 4.0, 5.0], [2.5, 3.5, 4.5, 5.5, 6.5, 7.5], 0.5, 0.3333333333333333),
        (lengths, longer, 0.45499999999999996, 1.4304976538973342e-27),
        (ties, other_ties, 0.08333333333333337, 0.5604496640849466),
    ]


@pytest.mark.parametrize(("first", "second", "statistic", "p_value"), samples())
def test_two_samples_as_scipy_tests_them(
    first: list[float], second: list[float], statistic: float, p_value: float
) -> None:
    assert ks_2samp(first, second) == pytest.approx((statistic, p_value), rel=1e-9)
    assert ks_2samp(second, first) == pytest.approx((statistic, p_value), rel=1e-9)


def test_the_same_sample_does_not_differ_and_an_empty_one_is_refused() -> None:
    assert ks_2samp([3.0, 1.0, 2.0], [2.0, 3.0, 1.0]) == (0.0, 1.0)
    with pytest.raises(ValueError, match="values in both samples"):
        ks_2samp([], [1.0])
