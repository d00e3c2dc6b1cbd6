"""workbench.metrics: hand-computed cases, edge cases, folders, and torchmetrics agreement."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from workbench.classes import ClassSchema
from workbench.errors import CancelledError, InputError, WorkbenchError
from workbench.masks import read_mask, write_mask
from workbench.metrics import (ConfusionMatrix, EvaluationReport, evaluate_folders, score_pair,
                               scores_from_matrix)
from workbench.progress import CancelToken

CAMVID_STEMS = ["0016E5_07959", "0016E5_08009", "0016E5_08059", "0016E5_08109", "0016E5_08159"]


@pytest.fixture
def schema3() -> ClassSchema:
    """Three trainable classes plus a void class 3 (like CamVid's 11), 255 unlabelled."""
    return ClassSchema.from_dict({"ignore_index": 3, "classes": [
        {"index": 0, "name": "a", "color": [10, 10, 10]},
        {"index": 1, "name": "b", "color": [200, 0, 0]},
        {"index": 2, "name": "c", "color": [0, 200, 0]},
        {"index": 3, "name": "void", "color": [0, 0, 0], "void": True}]})


@pytest.fixture(scope="module")
def camvid_schema(camvid) -> ClassSchema:
    return ClassSchema.load(camvid / "classes.json")


@pytest.fixture(scope="module")
def camvid_pairs(camvid, camvid_schema) -> list[tuple[np.ndarray, np.ndarray]]:
    """(pred, gt) for 5 CamVid val masks, half size: pred shifted and 10% noise, no void."""
    rng = np.random.default_rng(7)
    pairs = []
    for stem in CAMVID_STEMS:
        gt = read_mask(camvid / "valannot" / f"{stem}.png", camvid_schema)[::2, ::2].copy()
        pred = np.roll(gt, (3, -4), axis=(0, 1))
        # torchmetrics only accepts predictions 0..K-1, so void in the shifted copy is replaced.
        noisy = (rng.random(gt.shape) < 0.1) | (pred == 11)
        pred[noisy] = rng.integers(0, 11, int(noisy.sum()))
        pairs.append((pred, gt))
    return pairs


# ----- hand-computed ------------------------------------------------------------------------
def test_confusion_matrix_rows_are_ground_truth_columns_prediction():
    gt = np.array([[0, 0, 1], [1, 2, 2]], np.uint8)
    pred = np.array([[0, 1, 1], [1, 2, 0]], np.uint8)
    cm = ConfusionMatrix(3)
    cm.update(pred, gt)
    assert cm.matrix.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0]]
    s = cm.scores()
    # class 0: tp 1, fn 1, fp 1 -> 1/3; class 1: tp 2, fp 1 -> 2/3; class 2: tp 1, fn 1 -> 1/2
    assert s.per_class_iou == pytest.approx([1 / 3, 2 / 3, 1 / 2])
    assert s.miou == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert s.pixel_accuracy == pytest.approx(4 / 6)
    assert s.pixels == 6


def test_ignored_ground_truth_pixels_are_not_scored(schema3):
    gt = np.array([[0, 3, 255], [1, 1, 3]], np.uint8)
    pred = np.array([[0, 2, 2], [1, 2, 0]], np.uint8)
    s = score_pair(pred, gt, schema3)
    assert s.pixels == 3
    assert s.per_class_iou == pytest.approx([1.0, 0.5, 0.0])  # class 2 predicted, never true
    assert s.pixel_accuracy == pytest.approx(2 / 3)


def test_predictions_outside_trainable_classes_count_as_wrong(schema3):
    gt = np.array([[0, 0, 1, 1]], np.uint8)
    pred = np.array([[0, 3, 255, 1]], np.uint8)  # void and "not labelled" predicted
    cm = ConfusionMatrix(3)
    cm.update(pred, gt, schema3.ignore_values)
    assert cm.matrix.tolist() == [[1, 0, 0, 1], [0, 1, 0, 1], [0, 0, 0, 0]]
    s = cm.scores()
    # the extra column is a miss for the true class and a false positive for no class
    assert s.per_class_iou == [0.5, 0.5, None]
    assert s.pixel_accuracy == 0.5


def test_out_of_range_predictions_of_any_dtype_count_as_wrong():
    gt = np.array([0, 1, 1, 0, 1], np.uint8)
    pred = np.array([0, -1, 7, 300, 1], np.int64)
    cm = ConfusionMatrix(2)
    cm.update(pred, gt)
    assert cm.matrix.tolist() == [[1, 0, 1], [0, 1, 2]]
    assert cm.scores().pixel_accuracy == pytest.approx(2 / 5)


def test_class_absent_from_both_is_none_and_left_out_of_mean():
    gt = np.array([[0, 0, 1, 1]], np.uint8)
    pred = np.array([[0, 1, 1, 1]], np.uint8)
    s = score_pair(pred, gt, ClassSchema.default(["x", "y", "z"]))
    assert s.per_class_iou[2] is None
    assert s.miou == pytest.approx((0.5 + 2 / 3) / 2)


def test_class_only_predicted_scores_zero_not_none():
    gt = np.zeros((2, 2), np.uint8)
    pred = np.array([[0, 2], [0, 0]], np.uint8)
    s = score_pair(pred, gt, ClassSchema.default(3))
    assert s.per_class_iou == [0.75, None, 0.0]
    assert s.miou == pytest.approx(0.375)


def test_all_void_image_scores_nothing(schema3):
    gt = np.full((4, 5), 3, np.uint8)
    gt[0, 0] = 255
    s = score_pair(np.zeros((4, 5), np.uint8), gt, schema3)
    assert s.pixels == 0
    assert s.miou is None and s.pixel_accuracy is None
    assert s.per_class_iou == [None, None, None]


def test_dataset_level_matrix_is_not_a_mean_of_per_image_scores():
    # a big perfect image and a tiny wrong one: the dataset score is dominated by pixels
    cm = ConfusionMatrix(2)
    big = np.zeros((10, 10), np.uint8)
    big[:, 5:] = 1
    cm.update(big, big)
    cm.update(np.array([[1]], np.uint8), np.array([[0]], np.uint8))
    s = cm.scores()
    assert s.per_class_iou == pytest.approx([50 / 51, 50 / 51])
    assert s.pixel_accuracy == pytest.approx(100 / 101)


def test_shape_mismatch_and_invalid_ground_truth_are_refused(schema3):
    with pytest.raises(InputError, match="prediction is 3x2 pixels but the ground truth is 2x3"):
        score_pair(np.zeros((2, 3), np.uint8), np.zeros((3, 2), np.uint8), schema3)
    with pytest.raises(ValueError, match="neither classes"):
        ConfusionMatrix(3).update(np.zeros(2, np.uint8), np.array([0, 9], np.uint8))
    with pytest.raises(ValueError):
        ConfusionMatrix(0)


def test_scores_of_empty_matrix():
    s = scores_from_matrix(np.zeros((3, 4), np.int64))
    assert (s.miou, s.pixel_accuracy, s.per_class_iou, s.pixels) == (None, None, [None] * 3, 0)


def _reference_scores(pred: np.ndarray, gt: np.ndarray, k: int, ignore: int):
    """Per-class loop straight from the definitions, independent of the bincount code."""
    keep = gt != ignore
    p, g = pred[keep], gt[keep]
    ious = []
    for c in range(k):
        tp = np.sum((p == c) & (g == c))
        union = np.sum((p == c) | (g == c))
        ious.append(tp / union if union else None)
    acc = float(np.mean(p == g)) if g.size else None
    return ious, acc


@settings(max_examples=60, deadline=None)
@given(arrays(np.uint8, (6, 7), elements=st.integers(0, 5)),
       arrays(np.uint8, (6, 7), elements=st.integers(0, 5)))
def test_matches_per_class_definition(pred, gt):
    # K = 4 trainable classes, 4 = void (ignored in gt, wrong in pred), 5 = out of range
    gt = np.where(gt == 5, 4, gt).astype(np.uint8)
    cm = ConfusionMatrix(4)
    cm.update(pred, gt, (4, 255))
    s = cm.scores()
    ious, acc = _reference_scores(pred, gt, 4, 4)
    assert [None if v is None else pytest.approx(v) for v in ious] == s.per_class_iou
    assert s.pixel_accuracy == (None if acc is None else pytest.approx(acc))


@settings(max_examples=40, deadline=None)
@given(arrays(np.int64, (5, 6), elements=st.integers(-3, 300)),
       arrays(np.uint8, (5, 6), elements=st.sampled_from([0, 1, 2, 3, 4, 255])))
def test_uint8_fast_path_equals_general_path(pred, gt):
    # K = 4, void 4 and 255 ignored; predictions of any integer value
    expected = np.zeros((4, 5), np.int64)
    for p, g in zip(pred.ravel(), gt.ravel()):
        if g in (4, 255):
            continue
        expected[g, p if 0 <= p < 4 else 4] += 1
    cm = ConfusionMatrix(4)
    assert np.array_equal(cm.compute(pred, gt, (4, 255)), expected)                     # int pred
    assert np.array_equal(cm.compute(pred, gt.astype(np.int32), (4, 255)), expected)    # general
    in_range = np.where((pred >= 0) & (pred <= 255), pred, 255).astype(np.uint8)
    assert np.array_equal(cm.compute(in_range, gt, (4, 255)), expected)                 # uint8


def test_invalid_ground_truth_is_named_in_both_paths():
    for dtype in (np.uint8, np.int32):
        gt = np.array([0, 7, 255, 9], dtype)
        with pytest.raises(ValueError, match=r"values \[7, 9\] that are neither classes 0..1"):
            ConfusionMatrix(2).update(np.zeros(4, np.uint8), gt)


# ----- against torchmetrics ---------------------------------------------------------------
def _torchmetrics(pairs):
    import torch
    from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

    preds = torch.from_numpy(np.stack([p for p, _ in pairs]).astype(np.int64))
    target = torch.from_numpy(np.stack([g for _, g in pairs]).astype(np.int64))
    macro = MulticlassJaccardIndex(num_classes=11, ignore_index=11, average="macro")(preds, target)
    per_class = MulticlassJaccardIndex(num_classes=11, ignore_index=11, average=None)(preds, target)
    acc = MulticlassAccuracy(num_classes=11, ignore_index=11, average="micro")(preds, target)
    return float(macro), per_class.tolist(), float(acc)


def test_agrees_with_torchmetrics_on_camvid(camvid_pairs, camvid_schema):
    cm = ConfusionMatrix(camvid_schema.num_classes)
    for pred, gt in camvid_pairs:
        cm.update(pred, gt, camvid_schema.ignore_values)
    s = cm.scores()
    macro, per_class, acc = _torchmetrics(camvid_pairs)
    assert all(v is not None for v in s.per_class_iou)
    assert s.per_class_iou == pytest.approx(per_class, abs=1e-6)
    assert s.miou == pytest.approx(macro, abs=1e-6)
    assert s.pixel_accuracy == pytest.approx(acc, abs=1e-6)
    assert 0.3 < s.miou < 0.9  # a real mix of right and wrong pixels, not a degenerate case


def test_absent_class_convention_against_torchmetrics(camvid_pairs, camvid_schema):
    # Remove Bicyclist (10) from both sides. torchmetrics' per-class (average=None) reports
    # 0.0 for it while its macro mean leaves it out; we report None and leave it out too.
    pairs = [(np.where(p == 10, 0, p).astype(np.uint8), np.where(g == 10, 0, g).astype(np.uint8))
             for p, g in camvid_pairs]
    cm = ConfusionMatrix(11)
    for pred, gt in pairs:
        cm.update(pred, gt, camvid_schema.ignore_values)
    s = cm.scores()
    macro, per_class, acc = _torchmetrics(pairs)
    assert s.per_class_iou[10] is None and per_class[10] == 0.0
    assert s.per_class_iou[:10] == pytest.approx(per_class[:10], abs=1e-6)
    assert s.miou == pytest.approx(macro, abs=1e-6)
    assert s.pixel_accuracy == pytest.approx(acc, abs=1e-6)


# ----- folders ------------------------------------------------------------------------------
def _write_pairs(tmp_path, pairs, schema):
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    for i, (pred, gt) in enumerate(pairs):
        write_mask(gt_dir / f"img{i}.png", gt, schema)
        write_mask(pred_dir / f"img{i}.png", pred, schema)
    return pred_dir, gt_dir


def test_evaluate_folders_equals_in_memory_matrix(tmp_path, camvid_pairs, camvid_schema):
    pred_dir, gt_dir = _write_pairs(tmp_path, camvid_pairs, camvid_schema)
    seen = []
    report = evaluate_folders(pred_dir, gt_dir, camvid_schema, on_progress=seen.append)
    cm = ConfusionMatrix(11)
    for pred, gt in camvid_pairs:
        cm.update(pred, gt, camvid_schema.ignore_values)
    assert isinstance(report, EvaluationReport)
    assert np.array_equal(report.confusion, cm.matrix)
    assert report.scores.miou == pytest.approx(_torchmetrics(camvid_pairs)[0], abs=1e-6)
    assert report.images == 5 and report.missing == [] and report.problems == []
    assert set(report.per_image) == {f"img{i}" for i in range(5)}
    assert report.per_image["img0"] == pytest.approx(score_pair(*camvid_pairs[0], camvid_schema).miou)
    assert report.class_names[0] == "Sky" and len(report.class_names) == 11
    assert [p.done for p in seen] == [1, 2, 3, 4, 5] and seen[-1].total == 5
    js = report.to_json()
    assert js["miou"] == report.scores.miou and js["images"] == 5 and len(js["per_class_iou"]) == 11


def test_evaluate_folders_pairs_by_stem_across_formats(tmp_path, schema3):
    gt = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    write_mask(tmp_path / "gt" / "a.png", gt, schema3)
    (tmp_path / "pred").mkdir()
    lut = np.array([c.color for c in schema3.classes] + [(0, 0, 0)] * 252, np.uint8)
    Image.fromarray(lut[gt]).save(tmp_path / "pred" / "a.bmp")  # colour-coded, another format
    report = evaluate_folders(tmp_path / "pred", tmp_path / "gt", schema3)
    assert report.images == 1 and report.scores.miou == 1.0


def test_missing_predictions_and_problems_are_reported(tmp_path, schema3):
    gt = np.zeros((4, 4), np.uint8)
    gt[2:] = 1
    for name in ("ok", "nopred", "small", "badvalue", "broken", "void"):
        write_mask(tmp_path / "gt" / f"{name}.png", gt, schema3)
    write_mask(tmp_path / "gt" / "void.png", np.full((4, 4), 3, np.uint8), schema3)
    write_mask(tmp_path / "pred" / "ok.png", gt, schema3)
    write_mask(tmp_path / "pred" / "void.png", gt, schema3)
    write_mask(tmp_path / "pred" / "small.png", gt[:3], schema3)
    write_mask(tmp_path / "pred" / "badvalue.png", np.full((4, 4), 9, np.uint8), schema3)
    (tmp_path / "pred" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    write_mask(tmp_path / "pred" / "extra.png", gt, schema3)  # no ground truth: not scored
    report = evaluate_folders(tmp_path / "pred", tmp_path / "gt", schema3)
    assert report.images == 2
    assert report.missing == ["nopred.png"]
    assert report.per_image == {"ok": 1.0, "void": None}
    assert report.scores.pixels == 16 and report.scores.miou == 1.0
    problems = "\n".join(report.problems)
    assert len(report.problems) == 3
    assert "small.png: mask is 4x3 pixels but its image is 4x4" in problems
    assert "badvalue.png: mask holds values outside the class schema: 9" in problems
    assert "broken.png" in problems


def test_duplicate_stems_are_reported(tmp_path, schema3):
    gt = np.zeros((2, 2), np.uint8)
    write_mask(tmp_path / "gt" / "a.png", gt, schema3)
    Image.fromarray(gt).save(tmp_path / "gt" / "a.bmp")
    write_mask(tmp_path / "pred" / "a.png", gt, schema3)
    report = evaluate_folders(tmp_path / "pred", tmp_path / "gt", schema3)
    assert report.images == 1
    assert len(report.problems) == 1 and "a.bmp was used" in report.problems[0]  # first by name


def test_empty_or_absent_folders_give_clear_errors(tmp_path, schema3):
    (tmp_path / "gt").mkdir()
    (tmp_path / "pred").mkdir()
    (tmp_path / "gt" / "notes.txt").write_text("no masks here")
    with pytest.raises(WorkbenchError, match="no ground-truth masks found") as err:
        evaluate_folders(tmp_path / "pred", tmp_path / "gt", schema3)
    assert str(tmp_path / "gt") in str(err.value)
    write_mask(tmp_path / "gt" / "a.png", np.zeros((2, 2), np.uint8), schema3)
    with pytest.raises(InputError, match="not a folder") as err:
        evaluate_folders(tmp_path / "nowhere", tmp_path / "gt", schema3)
    assert "nowhere" in str(err.value)
    # an empty prediction folder is not an error: every ground truth is reported missing
    report = evaluate_folders(tmp_path / "pred", tmp_path / "gt", schema3)
    assert report.images == 0 and report.missing == ["a.png"] and report.scores.miou is None


def test_cancel_stops_between_images(tmp_path, schema3):
    for i in range(3):
        write_mask(tmp_path / "gt" / f"{i}.png", np.zeros((2, 2), np.uint8), schema3)
    token = CancelToken()
    calls = []

    def on_progress(p):
        calls.append(p.done)
        token.cancel()

    with pytest.raises(CancelledError):
        evaluate_folders(tmp_path / "gt", tmp_path / "gt", schema3, on_progress=on_progress, cancel=token)
    assert calls == [1]
