"""Writes core/src/test/resources/pillow_parity.txt: a random RGB image and what the Python side of
tfq_mixed makes of it (`tfq_mixed.demo.images.Preprocessing`: center crop, Pillow bicubic resize), so the
Kotlin preprocessing can be checked against it in a JVM unit test (PillowParityTest) without Python.

  python android_demo/make_parity_fixture.py

Format: line 1 `width height out_width out_height crop`; line 2 the input pixels, row-major, as
6-digit hex RGB; line 3 the expected output pixels, the same way.
"""

import os

import numpy as np
from PIL import Image

from tfq_mixed.demo import images

WIDTH, HEIGHT, OUT_W, OUT_H, CROP = 41, 29, 12, 10, 0.875


def main():
  rng = np.random.default_rng(6)
  # Smooth gradients plus noise: both the kernel shape and the rounding get exercised.
  yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
  base = np.stack([xx * 255 / WIDTH, yy * 255 / HEIGHT, (xx + yy) * 127 / (WIDTH + HEIGHT)], -1)
  pixels = np.clip(base + rng.integers(-60, 61, size=base.shape), 0, 255).astype(np.uint8)
  pre = images.Preprocessing(image_size=(OUT_H, OUT_W), crop=CROP, scale=1.0, offset=0.0)
  out = pre.apply(Image.fromarray(pixels)).round().astype(np.uint8)
  hexes = lambda a: " ".join("%02x%02x%02x" % tuple(p) for p in a.reshape(-1, 3))
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      "core", "src", "test", "resources", "pillow_parity.txt")
  with open(path, "w") as f:
    f.write(f"{WIDTH} {HEIGHT} {OUT_W} {OUT_H} {CROP}\n{hexes(pixels)}\n{hexes(out)}\n")
  print("wrote", path)


if __name__ == "__main__":
  main()
