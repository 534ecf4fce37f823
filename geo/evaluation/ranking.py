"""Rates fair to small units: a 95 % Wilson interval for each, the empirical Bayes
(beta-binomial) estimate, which pulls a unit toward the pooled rate the less it has to show
for itself, and a rank by the posterior expected rank.

Why empirical Bayes and not the Wilson lower bound: the lower bound penalises size itself: a
department with 3 cases out of 3 closed on time (lower bound 0.44) ranks below one with 900
of 1,000 (0.88), and would be last among departments that all do well, although nothing says
it is worse. The beta-binomial prior is fitted to all the units (maximum marginal likelihood,
scipy): when units differ little, the prior is strong and a small unit lands near the pooled
rate, in the middle; when they differ a lot, each unit's own record counts for more. A
unit's estimate is its posterior mean (k + α) / (n + α + β).

Units are ranked by their posterior expected rank rather than by that mean: where units
differ a lot, a unit with 0 of 3 has a mean a little below the worst large unit's, yet its
posterior is wide, and it is more likely above that unit than below; the expected rank puts
it where the evidence does (in the middle), and orders large units as their means do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

Z95 = float(stats.norm.ppf(0.975))
# The prior's strength α + β is kept within these bounds: below, a unit with one report
# would stand on its own; above, units that all agree tie at the pooled rate, and the upper
# bound still lets their own records order them.
_STRENGTH = (1e-2, 1e6)


def wilson(k: np.ndarray, n: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Return the Wilson score interval (low, high) of k successes in n trials, element-wise
    (NaN where n is 0): scipy's binomtest(k, n).proportion_ci(method='wilson'), vectorised."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low, high = np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)
    # The bound at an end is exact: 0 successes have 0 as the low end, all of them 1 as the high.
    low = np.where((k == 0) & (n > 0), 0.0, low)
    high = np.where((k == n) & (n > 0), 1.0, high)
    return low, high


@dataclass(frozen=True)
class Prior:
    """A fitted beta prior: its mean and its strength α + β (in pseudo-trials)."""

    mean: float
    strength: float

    @property
    def alpha(self) -> float:
        """Return α."""
        return self.mean * self.strength

    @property
    def beta(self) -> float:
        """Return β."""
        return (1 - self.mean) * self.strength


def fit_prior(k: np.ndarray, n: np.ndarray) -> Prior | None:
    """Return the beta prior that best explains k out of n per unit (maximum marginal
    likelihood of the beta-binomial, with its gradient); None without two units that have
    trials."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    has = n > 0
    k, n = k[has], n[has]
    if len(n) < 2:
        return None
    pooled = float(k.sum() / n.sum())
    if pooled in (0.0, 1.0):  # all units at one end: nothing to shrink toward but that end
        return Prior(pooled, _STRENGTH[1])

    def nll(theta: np.ndarray) -> tuple[float, np.ndarray]:
        m, s = special.expit(theta[0]), np.exp(theta[1])
        a, b = m * s, (1 - m) * s
        value = -(special.betaln(k + a, n - k + b) - special.betaln(a, b)).sum()
        both = special.digamma(n + s) - special.digamma(s)
        da = (special.digamma(k + a) - special.digamma(a) - both).sum()
        db = (special.digamma(n - k + b) - special.digamma(b) - both).sum()
        grad = np.array([s * m * (1 - m) * (da - db), a * da + b * db])
        return float(value), -grad

    start = np.array([special.logit(pooled), np.log(10.0)])
    bounds = [(-15.0, 15.0), (np.log(_STRENGTH[0]), np.log(_STRENGTH[1]))]
    found = optimize.minimize(nll, start, jac=True, method="L-BFGS-B", bounds=bounds)
    return Prior(float(special.expit(found.x[0])), float(np.exp(found.x[1])))


def shrunk(k: np.ndarray, n: np.ndarray, prior: Prior | None) -> np.ndarray:
    """Return each unit's posterior mean (NaN without trials); its raw rate without a prior."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        if prior is None:
            return np.where(n > 0, k / n, np.nan)
        return np.where(n > 0, (k + prior.alpha) / (n + prior.strength), np.nan)


def ranks(estimate: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Return 1 for the best estimate, ties sharing the better rank; NaN stays unranked."""
    estimate = np.asarray(estimate, dtype=float)
    out = np.full(len(estimate), np.nan)
    has = ~np.isnan(estimate)
    if has.any():
        key = -estimate[has] if higher_is_better else estimate[has]
        out[has] = stats.rankdata(key, method="min")
    return out


def expected_ranks(
    k: np.ndarray, n: np.ndarray, prior: Prior | None, higher_is_better: bool
) -> np.ndarray:
    """Return each unit's posterior expected rank, 1 + Σ_j P(θ_j better than θ_i), under the
    beta posteriors Beta(α + k, β + n - k) (NaN without trials; without a prior, the rank of
    the raw rate). A unit with few cases has a wide posterior, as likely above as below the
    others: its expected rank lies in the middle (Laird and Louis 1989).

    The probabilities are sums over a fine grid spanning where the posteriors hold their
    mass, each cell weighted by its exact mass under the unit's posterior (the incomplete
    beta function), so that the narrow posteriors of large units are summed as exactly as
    the wide ones."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    out = np.full(len(k), np.nan)
    has = n > 0
    if prior is None or has.sum() < 2:
        with np.errstate(invalid="ignore", divide="ignore"):
            return ranks(np.where(has, k / np.where(has, n, 1), np.nan), higher_is_better)
    a, b = prior.alpha + k[has], prior.beta + n[has] - k[has]
    mean, sd = a / (a + b), np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    lo, hi = max(0.0, float((mean - 12 * sd).min())), min(1.0, float((mean + 12 * sd).max()))
    # Finer for a few units (departments), coarser for thousands (grid workers).
    cells = int(np.clip(400_000 / len(a), 200, 2001))
    cdf = special.betainc(a[:, None], b[:, None], np.linspace(lo, hi, cells)[None, :])
    mass = np.diff(cdf, axis=1)  # each unit's posterior mass in each cell
    mid = (cdf[:, :-1] + cdf[:, 1:]) / 2  # P(θ_j below the cell)
    beyond = (1 - mid) if higher_is_better else mid  # P(θ_j better than a value in the cell)
    others = beyond.sum(axis=0)[None, :] - beyond
    out[has] = 1 + (mass * others).sum(axis=1)
    return out


def fair_ranks(k: np.ndarray, n: np.ndarray, higher_is_better: bool) -> tuple:
    """Return (prior, posterior means, integer ranks by expected rank) of units' k of n."""
    prior = fit_prior(k, n)
    order = expected_ranks(k, n, prior, higher_is_better)
    return prior, shrunk(k, n, prior), ranks(order, higher_is_better=False)
