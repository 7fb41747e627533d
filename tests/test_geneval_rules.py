"""GenEval's rules on hand-made boxes: IoU, the position rule's floor, reason lines, and bad input."""

import pytest

from eval.geneval.rules import Detection, accuracy_by_tag, evaluate, evaluate_partial, iou, relative_position

POSITION = {"tag": "position", "include": [{"class": "cat", "count": 1},
                                           {"class": "dog", "count": 1, "position": ["right of", 0]}]}
COLOR = {"tag": "colors", "include": [{"class": "car", "count": 2, "color": "red"}]}


def det(box, score=0.95) -> Detection:
    return Detection(tuple(float(v) for v in box), score)


def test_iou_counts_pixels_inclusively_on_both_axes():
    a, b = (2, 4, 11, 23), (7, 14, 16, 33)  # 10 x 20 pixels each, overlap 5 x 10
    assert iou(a, b) == pytest.approx(50 / 350)
    assert iou(b, a) == pytest.approx(50 / 350)
    assert iou((0, 0, 9, 9), (20, 0, 29, 9)) == 0.0  # disjoint in x: the intersection's width clamps at 0
    assert iou((0, 0, 9, 9), (0, 20, 9, 29)) == 0.0  # and in y
    assert iou((5, 5, 4, 4), (5, 5, 4, 4)) == 0.0  # empty boxes: union 0


def test_position_offset_floors_at_zero_per_axis():
    assert relative_position((0.6, 0.1, 1.6, 1.1), (0, 0, 1, 1), threshold=0.0) == {"right of"}


def test_position_threshold_reaches_the_rule():
    found = {"cat": [det((0, 0, 10, 10))], "dog": [det((3, 0, 13, 10))]}
    assert not evaluate(found, POSITION, lambda o, n: []).correct  # (3 - 2) / 3 < 0.5
    assert evaluate(found, POSITION, lambda o, n: [], position_threshold=0.0).correct
    assert evaluate_partial(found, POSITION, lambda o, n: [], position_threshold=0.0).strict_correct


def test_reason_lines_name_every_relation_and_colour():
    found = {"cat": [det((0, 0, 10, 10))], "dog": [det((-10, -10, 0, 0))]}
    assert evaluate(found, POSITION, lambda o, n: []).reason == \
        "expected dog right of target, found above and left of target"
    cars = {"car": [det((0, 0, 5, 5)), det((10, 0, 15, 5))]}
    reason = "expected red car>=2, found 1 red; and 1 red, 1 blue"
    assert evaluate(cars, COLOR, lambda o, n: ["red", "blue"]).reason == reason
    assert evaluate_partial(cars, COLOR, lambda o, n: ["red", "blue"]).reason == reason


def test_a_position_must_refer_to_an_earlier_clause():
    forward = {"tag": "position", "include": [{"class": "dog", "count": 1, "position": ["right of", 0]},
                                              {"class": "cat", "count": 1}]}
    found = {"cat": [det((0, 0, 10, 10))], "dog": [det((20, 0, 30, 10))]}
    with pytest.raises(ValueError, match=r"include\[0\], which does not precede it; GenEval checks positions"):
        evaluate(found, forward, lambda o, n: [])


def test_accuracy_needs_one_tag_per_image_and_at_least_one_image():
    with pytest.raises(ValueError):
        accuracy_by_tag(["counting", "colors"], [True])
    with pytest.raises(ValueError, match="no scored images: the accuracy table needs at least one"):
        accuracy_by_tag([], [])
