"""Deployment add-ons: XNNPACK latency, the TFLite GPU delegate's verdict, ONNX (QDQ) export.

Not loaded by `import tfq_mixed`; `Result.gpu_compatibility` and `Result.to_onnx` load their module
when called.
"""
