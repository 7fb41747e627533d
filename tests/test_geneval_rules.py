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
    message = r"^include clause for 'dog' refers to include\[0\], which does not precede it; GenEval checks positions"
    with pytest.raises(ValueError, match=message):
        evaluate(found, forward, lambda o, n: [])
    with pytest.raises(ValueError, match=message):
        evaluate_partial(found, forward, lambda o, n: [])


def test_accuracy_needs_one_tag_per_image_and_at_least_one_image():
    with pytest.raises(ValueError):
        accuracy_by_tag(["counting", "colors"], [True])
    with pytest.raises(ValueError, match="^no scored images: the accuracy table needs at least one$"):
        accuracy_by_tag([], [])


def test_overlap_suppression_removes_boxes_at_the_threshold():
    from eval.geneval.rules import keep_objects

    big, half = det((0, 0, 9, 9), 0.9), det((0, 0, 9, 4), 0.8)  # IoU exactly 50 / 100
    assert keep_objects({"cat": [big, half]}, "single_object", nms_threshold=0.5) == {"cat": [big]}
    assert keep_objects({"cat": [big, half]}, "single_object", nms_threshold=0.51) == {"cat": [big, half]}


def test_position_rule_at_its_edges():
    b = (0.0, 0.0, 10.0, 10.0)
    shifted = lambda dx, dy=0.0: (dx, dy, 10.0 + dx, 10.0 + dy)  # noqa: E731
    assert relative_position(shifted(-4.0), b) == set()        # -(4 - 2) / 4 = -0.5, not below it
    assert relative_position(shifted(0.0, -4.0), b) == set()
    assert relative_position(shifted(0.0, 4.0), b) == set()
    assert relative_position((0.6, 0.0, 1.6, 1.0), (0, 0, 1, 1), threshold=0.0) == {"right of"}  # dy = 0 stays 0
    assert relative_position((0.001, 0, 0.001, 0), (0, 0, 0, 0), threshold=0.0) == {"right of"}  # 1e-3 is a relation
    # x sizes 2 + 10 shrink the 3.5 offset by 1.2: (3.5 - 1.2) / 3.5 > 0.5 (y sizes 10 + 10 would not)
    assert relative_position((17.5, 100.0, 19.5, 110.0), (10.0, 100.0, 20.0, 110.0)) == {"right of"}


def test_clauses_chain_positions_and_metadata_may_omit_include():
    chain = {"tag": "position", "include": [{"class": "cat", "count": 1},
                                            {"class": "dog", "count": 1, "position": ["right of", 0]},
                                            {"class": "bird", "count": 1, "position": ["below", 1]}]}
    cat, dog, bird = det((0, 0, 10, 10)), det((20, 0, 30, 10)), det((20, 20, 30, 30))
    assert evaluate({"cat": [cat], "dog": [dog], "bird": [bird]}, chain, lambda o, n: []).correct
    failed = evaluate({"cat": [cat], "dog": [det((-20, 0, -10, 10))], "bird": [bird]}, chain, lambda o, n: [])
    assert failed.reason.splitlines()[1] == "no target for bird to be below"
    empty = {"tag": "single_object", "exclude": [{"class": "cat", "count": 1}]}
    assert evaluate({}, empty, lambda o, n: []).correct
    partial = evaluate_partial({}, empty, lambda o, n: [])
    assert (partial.score, partial.strict_correct) == (0.0, True)


def test_partial_credit_colour_and_position_by_hand():
    cars = {"car": [det((0, 0, 5, 5)), det((10, 0, 15, 5))]}
    by_name = lambda objects, name: ["red"] * len(objects) if name == "car" else ["blue"] * len(objects)  # noqa: E731
    assert evaluate_partial(cars, COLOR, by_name).strict_correct
    half = evaluate_partial(cars, COLOR, lambda o, n: ["red", "blue"])
    assert half.score == pytest.approx((1 + 0.5) / 2)  # count 1, colour 1 - |2 - 1| / 2
    missing_dog = evaluate_partial({"cat": [det((0, 0, 10, 10))]}, POSITION, lambda o, n: [])
    assert missing_dog.score == pytest.approx(1 / 3)  # [1] + [0, 0]: the position clause's extra 0
    wrong = evaluate_partial({"cat": [det((0, 0, 10, 10))], "dog": [det((-20, 0, -10, 10))], "car": []},
                             {"include": POSITION["include"] + [{"class": "car", "count": 1}]}, lambda o, n: [])
    assert wrong.reason == "expected dog right of target, found left of target\nexpected car==1, found 0"
