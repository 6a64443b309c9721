"""Evaluation: separation metrics, the oracle mask bound and the quality benchmark."""

from .metrics import (
    confusion_matrix,
    improvements,
    match_estimates,
    pairwise_si_snr,
    sdr,
    si_snr,
    summarize,
)
from .oracle import OracleMask
from .quality import DEFAULT_MIXTURES, DEFAULT_SEED, evaluate_quality
from .report import DEFAULT_RESULTS, render_markdown, write_results

__all__ = [
    "DEFAULT_MIXTURES",
    "DEFAULT_RESULTS",
    "DEFAULT_SEED",
    "OracleMask",
    "confusion_matrix",
    "evaluate_quality",
    "improvements",
    "match_estimates",
    "pairwise_si_snr",
    "render_markdown",
    "sdr",
    "si_snr",
    "summarize",
    "write_results",
]
