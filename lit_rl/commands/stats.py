"""Aggregate statistics over seeds, the protocol of rliable (Agarwal et al., "Deep Reinforcement
Learning at the Edge of the Statistical Precipice", NeurIPS 2021): the interquartile mean (IQM,
the mean of the middle 50% of runs: ``scipy.stats.trim_mean(x, 0.25)``, rliable's
``aggregate_iqm``), 95% percentile confidence intervals from a stratified bootstrap (runs
resampled with replacement within each config), and the probability of improvement
``P(X > Y) + P(X = Y) / 2`` of one config's runs over another's (the Mann-Whitney U statistic
over ``n * m``, rliable's ``probability_of_improvement`` for one task).

Written here rather than imported: rliable 1.2 needs ``arch < 8``, and arch 7 does not import
next to pandas 3, which MyoSuite 3 installs.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import trim_mean

REPS = 2000
CONFIDENCE = 0.95


def iqm(scores: np.ndarray, axis: int = 0) -> np.ndarray:
    """Interquartile mean over ``axis`` (runs)."""
    return trim_mean(np.asarray(scores, float), 0.25, axis=axis)


def _interval(samples: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    tail = 100 * (1 - confidence) / 2
    return np.percentile(samples, tail, axis=0), np.percentile(samples, 100 - tail, axis=0)


def iqm_interval(
    scores: np.ndarray, reps: int = REPS, confidence: float = CONFIDENCE, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IQM over runs (axis 0 of ``scores``, e.g. ``[runs]`` or ``[runs, evaluation points]``) and
    its bootstrap confidence interval: ``(iqm, low, high)``, each of the shape after axis 0."""
    scores = np.asarray(scores, float)
    rng = np.random.default_rng(seed)
    resampled = scores[rng.integers(0, len(scores), (reps, len(scores)))]  # [reps, runs, ...]
    low, high = _interval(iqm(resampled, axis=1), confidence)
    return iqm(scores), low, high


MIN_RUNS = 3  # runs per config below which no interval is given: a bootstrap of 1 or 2 runs only repeats them


def interval_text(value: float, low: float, high: float, fmt=lambda v: f"{v:.1f}") -> str:
    """``value [low, high]``, as the tables print an estimate and its interval."""
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"


def estimate_text(value: float, low: float, high: float, runs: int, fmt=lambda v: f"{v:.1f}") -> str:
    """``interval_text`` from ``MIN_RUNS`` runs on; with fewer, the value and ``(no CI: N runs)``:
    resampling one run gives ``[v, v]`` and two runs little more, a certainty the data do not have."""
    if runs < MIN_RUNS:
        return f"{fmt(value)} (no CI: {runs} run{'' if runs == 1 else 's'})"
    return interval_text(value, low, high, fmt)


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(a run of X scores above a run of Y), ties counted half."""
    x, y = np.asarray(x, float)[:, None], np.asarray(y, float)[None, :]
    return float(((x > y) + 0.5 * (x == y)).mean())


def improvement_interval(
    x: np.ndarray, y: np.ndarray, reps: int = REPS, confidence: float = CONFIDENCE, seed: int = 0
) -> tuple[float, float, float]:
    """``probability_of_improvement(x, y)`` and its stratified bootstrap interval (X's and Y's
    runs resampled separately)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    rng = np.random.default_rng(seed)
    xs = x[rng.integers(0, len(x), (reps, len(x)))][:, :, None]
    ys = y[rng.integers(0, len(y), (reps, len(y)))][:, None, :]
    samples = ((xs > ys) + 0.5 * (xs == ys)).mean(axis=(1, 2))
    low, high = _interval(samples, confidence)
    return probability_of_improvement(x, y), float(low), float(high)
