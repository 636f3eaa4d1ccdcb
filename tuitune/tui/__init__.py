"""The Textual app: a thin layer over `tuitune.core`.

Importing this package (or `tuitune.tui.app`) must not import torch, transformers, peft or datasets:
the first frame has to appear before any of them loads. Screens are imported when first shown.
"""
