"""A small real model on real data that ships with a registry package, for the demo and the tests.

scikit-learn bundles the UCI handwritten digits (1,797 8x8 grey images, 10 classes); a few seconds of
training give a Conv/BN/ReLU/DepthwiseConv/Add/Dense network with real, non-trivial weights.
"""

from __future__ import annotations

import numpy as np


def digits_data() -> tuple[np.ndarray, np.ndarray]:
  """(images float32 (1797, 8, 8, 1) in [0, 1], labels int64)."""
  try:
    from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError("The digits example needs scikit-learn: pip install 'tfq_mixed[demo]'.") from e
  digits = load_digits()
  images = (digits.images / 16.0).astype(np.float32)[..., None]
  return images, digits.target.astype(np.int64)


def digits_model(epochs: int = 10, seed: int = 0):
  """Trains a small residual CNN on the digits; returns (model, images, labels).

  The split is fixed: the first 1,297 images train, the last 500 evaluate.
  """
  import keras  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(seed)
  images, labels = digits_data()
  inputs = keras.Input((8, 8, 1), name="digits")
  x = keras.layers.Conv2D(16, 3, padding="same", name="conv1")(inputs)
  x = keras.layers.BatchNormalization(momentum=0.9, name="bn1")(x)
  x = keras.layers.ReLU(name="relu1")(x)
  y = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
  y = keras.layers.BatchNormalization(momentum=0.9, name="dw_bn")(y)
  y = keras.layers.ReLU(6.0, name="dw_relu")(y)
  y = keras.layers.Conv2D(16, 1, name="pw")(y)
  y = keras.layers.BatchNormalization(momentum=0.9, name="pw_bn")(y)
  x = keras.layers.Add(name="add")([x, y])
  x = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
  x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
  x = keras.layers.Dense(32, activation="relu", name="fc1")(x)
  outputs = keras.layers.Dense(10, name="logits")(x)
  model = keras.Model(inputs, outputs, name="digits_cnn")
  model.compile(optimizer=keras.optimizers.Adam(3e-3),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
  model.fit(images[:1297], labels[:1297], epochs=epochs, batch_size=32, verbose=0)
  return model, images, labels
