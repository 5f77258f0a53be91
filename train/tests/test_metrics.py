"""§6 metrics against hand-computed values."""

import pytest

from refaug_train.metrics import summarize


def test_summary_hand_computed():
    # IoU exactly at each threshold counts (>=): 0.3 -> acc@0.3 only; 0.5 -> @0.3, @0.5; 0.7 -> all three
    s = summarize([0.3, 0.5, 0.7, 0.1], [1.0, 0.5, 0.0, 0.5], [0.0, 1.0, 2.0, 1.0])
    assert s["n_refs"] == 4
    assert s["acc@0.3"] == 0.75
    assert s["acc@0.5"] == 0.5
    assert s["acc@0.7"] == 0.25
    # the mean of the float32 values: (0.3 + 0.5 + 0.7 + 0.1) / 4 = 0.4 within float32 rounding
    assert s["mIoU"] == pytest.approx(0.4, abs=1e-7)
    assert s["median_IoU"] == pytest.approx(0.4, abs=1e-7)
    assert s["mCos"] == 0.5
    assert s["mED"] == 1.0


def test_no_ref_is_an_error():
    with pytest.raises(ValueError, match="no refs"):
        summarize([], [], [])
