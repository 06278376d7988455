"""Plots of fitted networks (training history, alignment); needs matplotlib,
imported only when drawing (``pip install -e ".[plot]"`` in a checkout)."""

from ._display import AlignmentDisplay, TrainingHistoryDisplay, rule_color

__all__ = ["AlignmentDisplay", "TrainingHistoryDisplay", "rule_color"]
