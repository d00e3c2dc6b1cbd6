"""Predictor: equals a plain padded forward, tiles agree with whole images, OOM fallback."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F

from workbench.classes import ClassSchema
from workbench.errors import CancelledError, WorkbenchError
from workbench.imageio import read_image
from workbench.ml.checkpoint import CheckpointMeta, save_checkpoint
from workbench.ml.inference import Predictor, is_out_of_memory
from workbench.ml.models import ModelConfig, build_model
from workbench.ml.tiling import axis_spans
from workbench.progress import CancelToken


def _make(num_classes: int, seed: int = 0) -> tuple[torch.nn.Module, CheckpointMeta]:
    torch.manual_seed(seed)
    model = build_model(ModelConfig("unet", "resnet18"), num_classes).eval()
    schema = ClassSchema.default(num_classes)
    return model, CheckpointMeta("unet", "resnet18", num_classes, schema.to_dict())


@pytest.fixture(scope="module")
def net():
    return _make(4)


@pytest.fixture(scope="module")
def tiny():
    """A shallow U-Net (stride 8, narrow decoder) for tests that run many forwards."""
    torch.manual_seed(0)
    model = smp.Unet("resnet18", encoder_weights=None, encoder_depth=3,
                     decoder_channels=(32, 16, 8), classes=4).eval()
    return model, CheckpointMeta("unet", "resnet18", 4, ClassSchema.default(4).to_dict())


@pytest.fixture(scope="module")
def street(camvid) -> np.ndarray:
    """A real 360x480 CamVid frame: realistic content for the tiling comparison."""
    return read_image(sorted((camvid / "val").iterdir())[0])


def _rand(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Smooth-ish content so predictions are not all one class.
    small = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    return np.ascontiguousarray(np.kron(small, np.ones((8, 8, 1), np.uint8))[:h, :w])


def _plain_logits(model, meta, image: np.ndarray) -> torch.Tensor:
    """Independent reference: normalise, reflect-pad (16 px every side, then to 32), forward, crop."""
    h, w = image.shape[:2]
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
    x = (x - torch.tensor(meta.mean).view(1, 3, 1, 1)) / torch.tensor(meta.std).view(1, 3, 1, 1)
    m = 16  # reflected context on every side, then the bottom/right up to a multiple of 32
    bottom, right = m + (-(h + 2 * m)) % 32, m + (-(w + 2 * m)) % 32
    mode = "reflect" if bottom < h and right < w else "replicate"  # reflect needs pad < size
    x = F.pad(x, (m, right, m, bottom), mode=mode)
    with torch.no_grad():
        return model(x)[0, :, m:m + h, m:m + w]


@pytest.mark.parametrize("hw, channels_last", [((64, 64), None), ((70, 90), None), ((33, 100), None),
                                                ((70, 90), False)])
def test_small_images_equal_a_plain_padded_forward(net, hw, channels_last):
    # The default runs the model in channels_last (faster on CPU); the plain reference
    # is NCHW, so this also checks that the layout does not change the answer.
    model, meta = net
    image = _rand(*hw)
    pred = Predictor(model, meta, device="cpu", channels_last=channels_last).predict(image)
    logits = _plain_logits(model, meta, image)
    prob = torch.softmax(logits, 0)
    assert pred.mask.dtype == np.uint8 and pred.mask.shape == hw
    assert pred.confidence.dtype == np.float32 and pred.entropy.dtype == np.float32
    np.testing.assert_array_equal(pred.mask, logits.argmax(0).numpy())
    np.testing.assert_allclose(pred.confidence, prob.max(0).values.numpy(), atol=1e-5)
    entropy = -(prob * torch.log_softmax(logits, 0)).sum(0) / np.log(4)
    np.testing.assert_allclose(pred.entropy, entropy.numpy(), atol=1e-4)


def test_confidence_and_entropy_ranges_and_two_class_identity():
    model, meta = _make(2, seed=3)
    pred = Predictor(model, meta, device="cpu").predict(_rand(64, 96, seed=5))
    c, e = pred.confidence.astype(np.float64), pred.entropy.astype(np.float64)
    assert c.min() >= 0.5 - 1e-6 and c.max() <= 1.0 + 1e-6
    assert e.min() >= 0.0 and e.max() <= 1.0
    # For two classes the normalised entropy is a function of the confidence p.
    q = np.clip(1.0 - c, 1e-12, None)
    expected = -(c * np.log(c) + q * np.log(q)) / np.log(2)
    np.testing.assert_allclose(e, expected, atol=2e-4)


def test_predict_many_keeps_order_and_batches_same_sizes(tiny):
    model, meta = tiny
    images = [("a", _rand(64, 64, 1)), ("b", _rand(64, 64, 2)), ("c", _rand(40, 72, 3)),
              ("d", _rand(64, 64, 4))]
    predictor = Predictor(model, meta, device="cpu", batch_size=2)
    calls = []
    forward = predictor.model.forward
    predictor.model.forward = lambda x: calls.append(tuple(x.shape)) or forward(x)
    out = list(predictor.predict_many(iter(images)))
    assert [k for k, _ in out] == ["a", "b", "c", "d"]
    assert calls == [(2, 3, 96, 96), (1, 3, 96, 128), (1, 3, 96, 96)]  # 16 px context each side, to 32
    for (key, image), (_, pred) in zip(images, out):
        ref = _plain_logits(model, meta, image).argmax(0).numpy()
        assert (pred.mask == ref).mean() >= 0.999, key


def test_tiled_prediction_agrees_with_whole_image(net, street):
    model, meta = net
    whole = Predictor(model, meta, device="cpu").predict(street)
    predictor = Predictor(model, meta, device="cpu", tile=256, overlap=64)
    shapes = []
    forward = predictor.model.forward
    predictor.model.forward = lambda x: shapes.append(tuple(x.shape)) or forward(x)
    tiled = predictor.predict(street)
    # 360x480 with 256-pixel tiles overlapping >= 64: 2 x 3 tiles, never a full-image forward
    # (each reads 224 x 224 and gets 16 pixels of reflected context on every side).
    assert sum(s[0] for s in shapes) == 6 and all(s[2:] == (256, 256) for s in shapes)
    agreement = (tiled.mask == whole.mask).mean()
    assert agreement >= 0.995, agreement
    # Confidence moves more than the argmax: a randomly initialised net has a very wide
    # effective receptive field, so tile context shifts its logits a little everywhere.
    assert np.abs(tiled.confidence - whole.confidence).mean() < 0.1


def test_tiles_cover_every_pixel_once():
    for length in (1, 255, 256, 257, 1000, 10_000):
        spans = axis_spans(length, 256, 64)
        owned = np.zeros(length, int)
        for s in spans:
            assert 0 <= s.start <= s.own_start < s.own_stop <= s.stop <= length
            assert s.stop - s.start == min(256, length)
            owned[s.own_start:s.own_stop] += 1
        assert (owned == 1).all()


def test_large_image_never_forwards_more_than_a_tile(tiny):
    model, meta = tiny
    predictor = Predictor(model, meta, device="cpu", tile=256, overlap=32, batch_size=2)
    shapes = []
    forward = predictor.model.forward
    predictor.model.forward = lambda x: shapes.append(tuple(x.shape)) or forward(x)
    pred = predictor.predict(_rand(300, 520, 7))
    assert pred.mask.shape == (300, 520)
    assert all(s[0] <= 2 and s[2] <= 256 and s[3] <= 256 for s in shapes)
    assert sum(s[0] for s in shapes) == 2 * 3


def test_cancel_between_tiles(tiny):
    model, meta = tiny
    predictor = Predictor(model, meta, device="cpu", tile=256, overlap=32, batch_size=1)
    token = CancelToken()
    reports = []

    def on_progress(p):
        reports.append(p.info.get("tiles_done"))
        token.cancel()

    calls = []
    forward = predictor.model.forward
    predictor.model.forward = lambda x: calls.append(1) or forward(x)
    with pytest.raises(CancelledError):
        predictor.predict(_rand(300, 520, 7), on_progress=on_progress, cancel=token)
    assert reports == [1] and len(calls) == 1  # stopped after the first of 6 tiles


def test_cancel_between_batches(tiny):
    model, meta = tiny
    token = CancelToken()
    predictor = Predictor(model, meta, device="cpu", batch_size=1)
    gen = predictor.predict_many([(i, _rand(32, 32, i)) for i in range(5)], cancel=token)
    next(gen)
    token.cancel()
    with pytest.raises(CancelledError):
        next(gen)


def _fail_first(predictor: Predictor, n: int, exc: type | BaseException) -> list:
    """Make the predictor's model raise ``exc`` on its first ``n`` calls (OOM on CPU)."""
    seen = []
    forward = predictor.model.forward

    def flaky(x):
        seen.append(tuple(x.shape))
        if len(seen) <= n:
            raise exc("CUDA out of memory. Tried to allocate 2.00 GiB") if isinstance(exc, type) else exc
        return forward(x)

    predictor.model.forward = flaky
    return seen


def test_oom_halves_the_batch_and_gives_the_same_result(tiny):
    model, meta = tiny
    images = [(i, _rand(64, 64, i)) for i in range(4)]
    reference = dict(Predictor(model, meta, device="cpu", batch_size=1).predict_many(images))
    predictor = Predictor(model, meta, device="cpu", batch_size=4)
    seen = _fail_first(predictor, 2, torch.cuda.OutOfMemoryError)
    out = dict(predictor.predict_many(images))
    assert [s[0] for s in seen[:3]] == [4, 2, 1]
    assert predictor._batch == 1
    for key, pred in out.items():
        np.testing.assert_array_equal(pred.mask, reference[key].mask)


def test_oom_at_batch_one_tiles_the_image(tiny):
    model, meta = tiny
    image = _rand(300, 300, 9)
    reference = Predictor(model, meta, device="cpu", tile=256, overlap=64).predict(image)
    predictor = Predictor(model, meta, device="cpu", tile=320, overlap=64, batch_size=1)
    # RuntimeError with "out of memory" is what older CUDA builds raise.
    seen = _fail_first(predictor, 1, RuntimeError("CUDA error: out of memory"))
    pred = predictor.predict(image)
    assert seen[0][2:] == (352, 352) and all(s[2:] == (256, 256) for s in seen[1:])  # 300 + 2 x 16, to 32
    assert len(seen) == 1 + 4
    np.testing.assert_array_equal(pred.mask, reference.mask)
    np.testing.assert_allclose(pred.confidence, reference.confidence, atol=1e-6)


def test_oom_at_batch_one_and_smallest_tile_is_a_workbench_error(tiny):
    model, meta = tiny
    predictor = Predictor(model, meta, device="cpu", tile=256, batch_size=2)
    _fail_first(predictor, 10**6, torch.cuda.OutOfMemoryError)
    with pytest.raises(WorkbenchError, match="out of memory on cpu even with batch 1 and 256"):
        predictor.predict(_rand(300, 300))


def test_other_errors_are_not_mistaken_for_oom(tiny):
    model, meta = tiny
    predictor = Predictor(model, meta, device="cpu")
    _fail_first(predictor, 1, RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    with pytest.raises(RuntimeError, match="shapes"):
        predictor.predict(_rand(32, 32))
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("x"))
    assert not is_out_of_memory(ValueError("out of memory"))


def test_from_checkpoint_and_caller_model_untouched(net, tmp_path):
    model, meta = net
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, model, meta)
    model.train()
    try:
        predictor = Predictor(model, meta, device="cpu")
        assert model.training and not predictor.model.training  # the predictor owns a copy
    finally:
        model.eval()
    loaded = Predictor.from_checkpoint(path, device="cpu")
    image = _rand(64, 80, 11)
    np.testing.assert_array_equal(loaded.predict(image).mask, predictor.predict(image).mask)


def test_two_threads_share_one_predictor(tiny):
    model, meta = tiny
    predictor = Predictor(model, meta, device="cpu")
    images = [_rand(64, 64, s) for s in range(4)]
    expected = [predictor.predict(im).mask for im in images]
    results: dict[int, list] = {0: [], 1: []}

    def work(slot: int) -> None:
        results[slot] = [predictor.predict(im).mask for im in images]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for slot in results:
        assert all(np.array_equal(a, b) for a, b in zip(results[slot], expected))


def test_bad_input_is_a_workbench_error(tiny):
    model, meta = tiny
    predictor = Predictor(model, meta, device="cpu")
    with pytest.raises(WorkbenchError, match="uint8"):
        predictor.predict(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(WorkbenchError, match="shape"):
        predictor.predict(np.zeros((10, 10, 3, 1), np.uint8))


class _EdgeProbe(torch.nn.Module):
    """Class 1 where a zero-padded 3x3 box sum of the input sees less than a full window.

    On a uniform image every pixel is the same, so any class-1 pixel means that the
    convolution's zero padding reached real content: the edge artefact of issue 12 item 6
    (the top row of the sample predictions came out as cytoplasm).
    """

    def __init__(self) -> None:
        super().__init__()
        self.box = torch.nn.Conv2d(3, 1, 3, padding=1, bias=False)
        torch.nn.init.constant_(self.box.weight, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        full = 9 * x.sum(dim=1, keepdim=True)  # a window inside the input
        s = self.box(x)
        return torch.cat([torch.zeros_like(s), (full - s).abs() - 1e-3], dim=1)


@pytest.mark.parametrize("hw", [(70, 90), (64, 64), (385, 486)])
def test_no_image_edge_meets_the_convolutions_zero_padding(hw):
    meta = CheckpointMeta("unet", "resnet18", 2, ClassSchema.default(2).to_dict())
    image = np.full((*hw, 3), 200, np.uint8)
    for backend_layout in (None, False):
        pred = Predictor(_EdgeProbe().eval(), meta, device="cpu", channels_last=backend_layout).predict(image)
        assert int(pred.mask.sum()) == 0, "an edge row or column saw zero padding"
        assert pred.mask[0].max() == 0 and pred.mask[:, 0].max() == 0  # top row, left column
