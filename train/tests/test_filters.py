"""The research's filters on hand-built rows (training-research.md §2, §10.2, §10.3, §10.11)."""

import numpy as np
import pytest

from refaug_train.filters import ProposalFilter, box_iou, eval_candidates, first_argmax, training_target

GT = np.array([0, 0, 100, 100], np.float32)


def rows(*boxes_scores: tuple[list[float], float]) -> tuple[np.ndarray, np.ndarray]:
    b = np.array([bs[0] for bs in boxes_scores], np.float32).reshape(-1, 4)
    s = np.array([bs[1] for bs in boxes_scores], np.float32)
    return b, s


def test_kept_is_strict_on_confidence_width_and_height():
    b, s = rows(
        ([0, 0, 50, 50], 0.25),  # confidence exactly 0.25: dropped (float32 0.25 is exact)
        ([0, 0, 16, 50], 0.9),  # width exactly 16: dropped
        ([0, 0, 50, 16], 0.9),  # height exactly 16: dropped
        ([10, 10, 26.5, 27], 0.26),  # 16.5 x 17: kept
        ([0, 0, 17, 17], 0.2500001),  # just above 0.25 in float32: kept
    )
    assert ProposalFilter().kept(b, s) == [3, 4]


def test_width_is_the_float_difference_of_the_corners():
    # 20.5 - 4.5 = 16.0 exactly: not > 16
    b, s = rows(([4.5, 0, 20.5, 30], 0.9), ([4.5, 0, 20.53125, 30], 0.9))
    assert ProposalFilter().kept(b, s) == [1]


def test_box_iou_hand_computed():
    # [0,0,50,100] vs [0,0,100,100]: inter 5000, union 10000 -> 0.5
    # [50,50,150,150]: inter 2500, union 10000 + 10000 - 2500 = 17500 -> 1/7
    # disjoint -> 0
    iou = box_iou(np.array([[0, 0, 50, 100], [50, 50, 150, 150], [200, 200, 300, 300]], np.float32), GT)
    assert iou.dtype == np.float32
    np.testing.assert_array_equal(iou, np.array([0.5, 1 / 7, 0.0], np.float32))


def test_eval_keeps_filtered_proposals_in_stored_order():
    b, s = rows(([0, 0, 50, 50], 0.9), ([0, 0, 10, 10], 0.9), ([20, 20, 90, 90], 0.3))
    c = eval_candidates(b, s, 640, 480)
    assert c.kept == [0, 2] and not c.fallback
    np.testing.assert_array_equal(c.boxes, b[[0, 2]])


@pytest.mark.parametrize("n", [0, 1])
def test_eval_falls_back_to_the_whole_image(n):
    b, s = rows(*([([0, 0, 10, 10], 0.9)] * n))  # n tiny proposals: none survives
    c = eval_candidates(b, s, 640, 480)
    assert c.fallback and c.kept == []
    np.testing.assert_array_equal(c.boxes, np.array([[0, 0, 640, 480]], np.float32))


def test_train_needs_two_kept_proposals():
    assert training_target(*rows(), GT) is None
    assert training_target(*rows(([0, 0, 100, 100], 0.9)), GT) is None  # one kept, IoU 1
    # two proposals, but one is dropped by the filter -> 1 kept
    assert training_target(*rows(([0, 0, 100, 100], 0.9), ([0, 0, 90, 90], 0.1)), GT) is None


def test_train_needs_best_iou_strictly_above_half():
    # both IoU exactly 0.5 (half-width boxes): no item
    half = rows(([0, 0, 50, 100], 0.9), ([50, 0, 100, 100], 0.9))
    assert training_target(*half, GT) is None
    # 0.51 (51x100 box) is above
    t = training_target(*rows(([0, 0, 50, 100], 0.9), ([0, 0, 51, 100], 0.9)), GT)
    assert t is not None and t.kept == [0, 1] and t.target == 1


def test_train_target_indexes_the_kept_list_and_ties_take_the_first():
    b, s = rows(
        ([0, 0, 10, 10], 0.9),  # dropped (size)
        ([0, 0, 80, 100], 0.9),  # IoU 0.8
        ([20, 0, 100, 100], 0.9),  # IoU 0.8 as well: tie -> the first (kept index 0)
        ([0, 0, 60, 100], 0.9),  # 0.6
    )
    t = training_target(b, s, GT)
    assert t is not None and t.kept == [1, 2, 3] and t.target == 0
    assert first_argmax([0.3, 0.7, 0.7]) == 1
