"""Training data: up-front checks, decoding to targets, augmentation, padding, weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.classes import ClassInfo, ClassSchema
from workbench.errors import InputError
from workbench.masks import write_mask
from workbench.ml import data as D


@pytest.fixture()
def schema() -> ClassSchema:
    # Three trainable classes plus a void class 3 (like CamVid's "Unlabelled").
    return ClassSchema([ClassInfo(0, "bg", (0, 0, 0)), ClassInfo(1, "a", (255, 0, 0)),
                        ClassInfo(2, "b", (0, 255, 0)), ClassInfo(3, "void", (9, 9, 9), void=True)], 3)


def _pair(folder: Path, name: str, image: np.ndarray, mask: np.ndarray, schema: ClassSchema) -> tuple[Path, Path]:
    img_path, mask_path = folder / f"{name}.png", folder / f"{name}_mask.png"
    Image.fromarray(image).save(img_path)
    write_mask(mask_path, mask, schema)
    return img_path, mask_path


def test_check_pairs_names_a_mask_of_the_wrong_size(tmp_path: Path, schema: ClassSchema) -> None:
    good = _pair(tmp_path, "good", np.zeros((20, 30, 3), np.uint8), np.zeros((20, 30), np.uint8), schema)
    bad = _pair(tmp_path, "bad", np.zeros((20, 30, 3), np.uint8), np.zeros((20, 31), np.uint8), schema)
    assert [p.hw for p in D.check_pairs([good])] == [(20, 30)]
    with pytest.raises(InputError, match="bad_mask.png.*31x20 pixels but its image bad.png is 30x20"):
        D.check_pairs([good, bad])


def test_check_pairs_names_unreadable_and_missing_files(tmp_path: Path, schema: ClassSchema) -> None:
    img, mask = _pair(tmp_path, "x", np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8), schema)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png at all")
    with pytest.raises(InputError, match="broken.png"):
        D.check_pairs([(broken, mask)])
    with pytest.raises(InputError, match="broken.png"):
        D.check_pairs([(img, broken)])
    with pytest.raises(InputError, match="missing.png.*not found"):
        D.check_pairs([(img, tmp_path / "missing.png")])


def test_load_pair_maps_void_and_rejects_values_outside_the_schema(tmp_path: Path, schema: ClassSchema) -> None:
    mask = np.array([[0, 1, 2, 3, 255]], np.uint8)
    info = D.check_pairs([_pair(tmp_path, "m", np.zeros((1, 5, 3), np.uint8), mask, schema)])[0]
    image, target = D.load_pair(info, schema)
    assert image.shape == (1, 5, 3) and image.flags.writeable
    assert target.tolist() == [[0, 1, 2, 255, 255]]  # void class 3 -> ignore
    bad = D.check_pairs([_pair(tmp_path, "v", np.zeros((1, 5, 3), np.uint8),
                               np.array([[0, 1, 7, 0, 0]], np.uint8), schema)])[0]
    with pytest.raises(InputError, match="v_mask.png.*outside the class schema: 7"):
        D.load_pair(bad, schema)


def _store_of(tmp_path: Path, schema: ClassSchema, image: np.ndarray, mask: np.ndarray) -> D.PairStore:
    infos = D.check_pairs([_pair(tmp_path, "s", image, mask, schema)])
    store = D.PairStore(infos, schema, cache=True)
    store.preload()
    return store


def test_augment_keeps_image_and_mask_aligned(tmp_path: Path, schema: ClassSchema) -> None:
    # The image's red channel encodes the class, so alignment is checkable after any flip/crop.
    rng = np.random.default_rng(0)
    mask = rng.integers(0, 3, (40, 50)).astype(np.uint8)
    image = np.stack([mask * 100, np.zeros_like(mask), np.zeros_like(mask)], axis=2).astype(np.uint8)
    store = _store_of(tmp_path, schema, image, mask)
    aug = D.Augment(32, scale=(1.0, 1.0), hflip=True)
    torch.manual_seed(0)
    for _ in range(10):
        img, tgt = aug(*store.get(0))
        assert img.shape == (3, 32, 32) and img.dtype == torch.uint8
        assert tgt.shape == (32, 32) and tgt.dtype == torch.uint8
        assert torch.equal(img[0] // 100, tgt)


def test_augment_scales_with_nearest_masks_and_pads_with_ignore(tmp_path: Path, schema: ClassSchema) -> None:
    mask = np.zeros((20, 24), np.uint8)
    mask[5:15, 6:18] = 2
    store = _store_of(tmp_path, schema, np.full((20, 24, 3), 200, np.uint8), mask)
    torch.manual_seed(1)
    seen_pad = False
    for _ in range(10):
        img, tgt = D.Augment(64, scale=(0.7, 1.6))(*store.get(0))
        values = set(torch.unique(tgt).tolist())
        assert values <= {0, 2, D.IGNORE}  # nearest: no blended class values
        pad = img[:, tgt == D.IGNORE]
        if pad.numel():  # padding is black (bilinear blends only the seam)
            assert float((pad == 0).float().mean()) > 0.8
        seen_pad |= D.IGNORE in values
    assert seen_pad  # a 20x24 image cannot fill a 64 crop without padding


def test_colour_jitter_changes_only_the_image(tmp_path: Path, schema: ClassSchema) -> None:
    rng = np.random.default_rng(2)
    mask = rng.integers(0, 3, (32, 32)).astype(np.uint8)
    store = _store_of(tmp_path, schema, rng.integers(0, 255, (32, 32, 3), dtype=np.uint8), mask)
    torch.manual_seed(3)
    img, tgt = D.Augment(32, scale=(1.0, 1.0), hflip=False, color_jitter=0.5)(*store.get(0))
    assert torch.equal(tgt, torch.from_numpy(mask))
    assert not torch.equal(img, torch.from_numpy(store.get(0)[0]).permute(2, 0, 1))


def test_validation_items_pad_to_32_with_ignore_and_tile_large_images(tmp_path: Path, schema: ClassSchema) -> None:
    mask = np.ones((40, 50), np.uint8)
    store = _store_of(tmp_path, schema, np.full((40, 50, 3), 7, np.uint8), mask)
    ds = D.ValDataset(store)
    images, targets = D.pad_collate([ds[0]])
    # 16 px of reflected context on every side (as the Predictor pads), then up to a multiple of 32.
    assert images.shape == (1, 3, 96, 96) and targets.shape == (1, 96, 96)
    assert int((targets == 1).sum()) == 40 * 50 and int((targets == D.IGNORE).sum()) == 96 * 96 - 2000
    assert torch.equal(targets[0, 16:56, 16:66], torch.ones(40, 50, dtype=torch.uint8))
    assert int(images.min()) == int(images.max()) == 7  # reflect padding, as the Predictor pads
    tiled = D.ValDataset(store, tile=32)
    assert len(tiled) == 4  # 40x50 in 32x32 tiles: 2 x 2
    assert sum(int(t.numel()) for _, t in (tiled[k] for k in range(4))) == 40 * 50


def test_median_frequency_weights_by_hand() -> None:
    # class 0: 300 px in images of 400 px -> 0.75; class 1: 100 of 400 -> 0.25;
    # class 2: 50 of 100 -> 0.5; median 0.5 -> weights 2/3, 2, 1; absent class 3 -> 1.
    counts = np.array([300, 100, 50, 0])
    image_pixels = np.array([400, 400, 100, 0])
    w = D.median_frequency_weights(counts, image_pixels)
    np.testing.assert_allclose(w, [2 / 3, 2.0, 1.0, 1.0], rtol=1e-6)
    assert D.median_frequency_weights(np.array([1000, 1]), np.array([1001, 1001]), max_weight=10)[1] == 10


def test_class_pixel_counts_skip_ignored_pixels(tmp_path: Path, schema: ClassSchema) -> None:
    mask = np.array([[0, 0, 1, 3, 255, 255]], np.uint8)
    store = _store_of(tmp_path, schema, np.zeros((1, 6, 3), np.uint8), mask)
    counts, image_pixels = D.class_pixel_counts(store, schema.num_classes)
    assert counts.tolist() == [2, 1, 0] and image_pixels.tolist() == [3, 3, 0]


def test_uncached_store_decodes_on_access(tmp_path: Path, schema: ClassSchema) -> None:
    infos = D.check_pairs([_pair(tmp_path, "u", np.full((4, 4, 3), 9, np.uint8), np.ones((4, 4), np.uint8), schema)])
    store = D.PairStore(infos, schema, cache=False)
    store.preload()  # no-op when not caching
    image, target = store.get(0)
    assert int(image[0, 0, 0]) == 9 and int(target[0, 0]) == 1
    assert D.decoded_bytes(infos) == 4 * 4 * 4


def test_auto_workers() -> None:
    assert D.auto_workers("cpu", cached=True, cpu_count=2) == 0
    assert D.auto_workers("cpu", cached=False, cpu_count=2) == 0
    assert D.auto_workers("cpu", cached=False, cpu_count=16) == 4
    assert D.auto_workers("cuda", cached=True, cpu_count=16) == 8
