"""What every study report shares: the paper pipeline's name in the study records, and how a
fraction is written as a percentage in their tables and prose."""

from __future__ import annotations

PAPER = "paper (AE → SGAN)"  # the paper pipeline's model name in study.json and its reports


def pct(value: float, digits: int = 1) -> str:
    """A fraction as a percentage without the sign: pct(0.9692, 2) == "96.92"."""
    return f"{100 * value:.{digits}f}"
