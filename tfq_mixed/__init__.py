"""tfq_mixed: post-training mixed int8/float quantization for Keras models on TensorFlow Lite.

QuantuneV2 (arXiv 2501.07161) done natively on TFLite: calibrate once, compare one float and one
int8 inference pass layer by layer, rank layers by local metrics, keep the most sensitive fused ops
in float for a requested share of int8 MACs.

Example:
  >>> import tfq_mixed
  >>> result = tfq_mixed.convert(keras_model, samples, ratio=0.9)
  >>> result.save("out/")
"""

import os as _os

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tfq_mixed import _native_output  # pylint: disable=g-import-not-at-top,wrong-import-position

_native_output.import_tensorflow_quietly()  # TensorFlow's oneDNN and CUDA start-up lines

# pylint: disable=g-import-not-at-top,wrong-import-position
from tfq_mixed.config import SelectiveQuantizationConfig, VERSION as __version__, load_config
from tfq_mixed.convert import Analysis, analyze, apply_config, convert
from tfq_mixed.errors import (BudgetWarning, ConfigError, ConversionError, DatasetError,
                              InvalidArgumentError, ProfileError,
                              InvalidTypeError, OutputError, TfqMixedError, UnsupportedModelError)
from tfq_mixed.qtyping import BudgetKind, Fallback, LayerStats, Node, Precision, Ranker
from tfq_mixed.result import Result

__all__ = [
    "__version__",
    # Workflow.
    "convert", "analyze", "apply_config", "load_config", "Analysis", "Result",
    "SelectiveQuantizationConfig", "Ranker", "Precision", "Fallback", "BudgetKind", "LayerStats",
    "Node",
    # Errors.
    "TfqMixedError", "InvalidArgumentError", "InvalidTypeError", "DatasetError",
    "UnsupportedModelError", "ConfigError", "ConversionError", "OutputError", "ProfileError",
    "BudgetWarning",
]
