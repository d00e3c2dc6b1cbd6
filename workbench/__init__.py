"""Segmentation Workbench: predict, correct, retrain and measure semantic segmentation.

Everything outside ``workbench.gui`` is plain Python, numpy and torch, importable
without Qt (a test enforces it).
"""

__version__ = "0.1.0"
