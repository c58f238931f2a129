"""Evaluation and plots: scoring TFLite models, ratio sweeps, figures and markdown reports.

Not part of the conversion pipeline: the main job, the tools and the benchmarks use it. Figures need
matplotlib (`pip install 'tfq_mixed[plots]'`), loaded only when a figure is drawn.
"""
