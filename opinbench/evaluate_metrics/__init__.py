"""Hugging Face ``evaluate`` metric modules, each in its own folder, loaded by path:
``evaluate.load(str(ORDINAL_WD))``. Importing this package does not import ``evaluate``."""

from pathlib import Path

ORDINAL_WD = Path(__file__).parent / "ordinal_wd"
"""The folder of the ordinal WD metric (``ordinal_wd/ordinal_wd.py``)."""
