"""GenEval's evaluation rules on detections, in plain Python (no torch, no mmdet).

Followed: djghosh13/geneval ``evaluation/evaluate_images.py`` (``evaluate_image``: which detections
are kept; ``relative_position``; ``compute_iou``; ``evaluate``: the strict per-image verdict) and
``evaluation/summary_scores.py`` (accuracy per tag, then the mean over tags). The training score
follows Flow-GRPO's reward server, yifan123/reward-server ``reward_server/gen_eval.py``
(``evaluate_reward``), which ``flow_grpo/rewards.py::geneval_score`` returns as ``scores``.

Detections are ``{class name: [Detection, ...]}``; the colour of an object is asked from a callback
``colors(objects, class name) -> [colour, ...]`` (the CLIP classifier of ``eval.geneval.colors``).
Metadata is GenEval's JSON record (``tag``, ``include``, optional ``exclude``), as
``eval.prompts.records.GenEvalRecord.to_metadata()`` writes it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

THRESHOLD = 0.3
COUNTING_THRESHOLD = 0.9
MAX_OBJECTS = 16
NMS_THRESHOLD = 1.0
"""GenEval's ``max_overlap`` default: 1.0 turns the overlap suppression off."""
POSITION_THRESHOLD = 0.1
TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
COLORS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white")

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Detection:
    """One detected object: box (x1, y1, x2, y2) in pixels, detector score, optional (H, W) bool mask."""

    box: Box
    score: float
    mask: Any = None


Detections = Mapping[str, Sequence[Detection]]
ColorFn = Callable[[Sequence[Detection], str], list[str]]


@dataclass(frozen=True)
class Verdict:
    """GenEval's per-image result: ``correct`` and the failed clauses, one per line, in ``reason``."""

    correct: bool
    reason: str


@dataclass(frozen=True)
class PartialVerdict:
    """Flow-GRPO's training result: exact-count correctness, the partial-credit score, the reason."""

    strict_correct: bool
    score: float
    reason: str


def iou(a: Box, b: Box) -> float:
    """GenEval's ``compute_iou``: areas count pixels inclusively (width = x2 - x1 + 1)."""
    def area(box: Sequence[float]) -> float:
        return max(box[2] - box[0] + 1, 0) * max(box[3] - box[1] + 1, 0)

    inter = area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))
    union = area(a) + area(b) - inter
    return inter / union if union else 0.0


def keep_objects(
    detections: Detections,
    tag: str,
    threshold: float = THRESHOLD,
    counting_threshold: float = COUNTING_THRESHOLD,
    max_objects: int = MAX_OBJECTS,
    nms_threshold: float = NMS_THRESHOLD,
) -> dict[str, list[Detection]]:
    """Per class, the objects GenEval evaluates, most confident first.

    Score strictly above ``threshold`` (``counting_threshold`` for the counting tag), the top
    ``max_objects`` by score, then greedy suppression of boxes with IoU >= ``nms_threshold`` against
    a kept one (none at the default 1.0). Equal scores come in reverse input order, as numpy's
    ``argsort(...)[::-1]`` gives them for small arrays. Classes left empty are dropped.
    """
    cutoff = counting_threshold if tag == "counting" else threshold
    kept: dict[str, list[Detection]] = {}
    for name, objects in detections.items():
        ranked = sorted(range(len(objects)), key=lambda i: objects[i].score)[::-1]
        order = [objects[i] for i in ranked if objects[i].score > cutoff][:max_objects]
        chosen: list[Detection] = []
        while order:
            best = order.pop(0)
            chosen.append(best)
            if nms_threshold != 1:
                order = [o for o in order if iou(best.box, o.box) < nms_threshold]
        if chosen:
            kept[name] = chosen
    return kept


def relative_position(a: Box, b: Box, threshold: float = POSITION_THRESHOLD) -> set[str]:
    """Where box ``a`` lies relative to box ``b`` (GenEval's ``relative_position``).

    The centre offset is shrunk on each axis by ``threshold`` x (sum of the two boxes' sizes on that
    axis), floored at 0; below 1e-3 on both axes there is no relation. The shrunk offset is divided
    by the length of the raw offset; a component beyond +-0.5 gives the relation ("left of" for
    dx < -0.5, "below" for dy > 0.5: image y grows downwards).
    """
    offset = [(a[k] + a[k + 2]) / 2 - (b[k] + b[k + 2]) / 2 for k in (0, 1)]
    size = [abs(a[k + 2] - a[k]) + abs(b[k + 2] - b[k]) for k in (0, 1)]
    revised = [math.copysign(max(abs(o) - threshold * s, 0.0), o) if o else 0.0 for o, s in zip(offset, size)]
    if all(abs(r) < 1e-3 for r in revised):
        return set()
    dx, dy = (r / math.hypot(*offset) for r in revised)
    relations = set()
    if dx < -0.5:
        relations.add("left of")
    if dx > 0.5:
        relations.add("right of")
    if dy < -0.5:
        relations.add("above")
    if dy > 0.5:
        relations.add("below")
    return relations


def _position_failure(objects: Sequence[Detection], targets: Sequence[Detection], relation: str,
                      name: str, threshold: float) -> str | None:
    """The first pair (object, target) not in ``relation``, as GenEval's reason line; None if all are."""
    for obj in objects:
        for target in targets:
            found = relative_position(obj.box, target.box, threshold)
            if relation not in found:
                return f"expected {name} {relation} target, found {' and '.join(sorted(found))} target"
    return None


def _color_reason(name: str, want: str, count: int, colors: list[str]) -> str:
    """GenEval's reason line for a colour clause."""
    seen = ", ".join(f"{colors.count(c)} {c}" for c in COLORS if c in colors)
    return f"expected {want} {name}>={count}, found {colors.count(want)} {want}; and {seen}"


def _target(groups: list[list[Detection] | None], index: int, name: str) -> list[Detection] | None:
    """The matched objects of include clause ``index``; it must come before the current clause."""
    if index >= len(groups):
        raise ValueError(f"include clause for {name!r} refers to include[{index}], which does not precede it; "
                         "GenEval checks positions against earlier clauses only")
    return groups[index]


def evaluate(objects: Detections, metadata: Mapping[str, Any], colors: ColorFn,
             position_threshold: float = POSITION_THRESHOLD) -> Verdict:
    """GenEval's strict verdict (``evaluate``): every include clause holds and no exclude clause fails.

    Include ``{class, count}``: at least ``count`` objects; only the ``count`` most confident are
    checked further. ``color``: all of them are classified that colour. ``position [rel, i]``: each of
    them is ``rel`` of every object matched by include clause ``i`` (failed clause: no target).
    Exclude ``{class, count}``: fewer than ``count`` objects of the class.
    """
    reasons: list[str] = []
    groups: list[list[Detection] | None] = []
    for req in metadata.get("include", []):
        name, count = req["class"], req["count"]
        found = list(objects.get(name, []))[:count]
        matched = len(found) >= count
        if not matched:
            reasons.append(f"expected {name}>={count}, found {len(found)}")
        if matched and "color" in req:
            got = colors(found, name)
            matched = got.count(req["color"]) >= count
            if not matched:
                reasons.append(_color_reason(name, req["color"], count, got))
        if matched and "position" in req:
            relation, index = req["position"]
            targets = _target(groups, index, name)
            failure = (f"no target for {name} to be {relation}" if targets is None
                       else _position_failure(found, targets, relation, name, position_threshold))
            matched = failure is None
            if failure:
                reasons.append(failure)
        groups.append(found if matched else None)
    for req in metadata.get("exclude", []):
        n = len(objects.get(req["class"], []))
        if n >= req["count"]:
            reasons.append(f"expected {req['class']}<{req['count']}, found {n}")
    return Verdict(not reasons, "\n".join(reasons))


def _partial_clause(req: Mapping[str, Any], found: list[Detection], groups: list[list[Detection] | None],
                    colors: ColorFn, threshold: float) -> tuple[list[float], str | None]:
    """Flow-GRPO's credits and failure reason (None when matched) for one include clause."""
    name, count = req["class"], req["count"]
    credits = [1 - abs(count - len(found)) / count]
    if len(found) != count:
        return credits + ([0.0] if "color" in req or "position" in req else []), \
            f"expected {name}=={count}, found {len(found)}"
    if "color" in req:
        got = colors(found, name)
        credits.append(1 - abs(count - got.count(req["color"])) / count)
        if got.count(req["color"]) != count:
            return credits, _color_reason(name, req["color"], count, got)
    if "position" in req:
        relation, index = req["position"]
        targets = _target(groups, index, name)
        if targets is None:
            return credits + [0.0], f"no target for {name} to be {relation}"
        failure = _position_failure(found, targets, relation, name, threshold)
        return credits + ([0.0, 1.0] if failure else [1.0]), failure
    return credits, None


def evaluate_partial(objects: Detections, metadata: Mapping[str, Any], colors: ColorFn,
                     position_threshold: float = POSITION_THRESHOLD) -> PartialVerdict:
    """Flow-GRPO's partial-credit score (reward-server ``gen_eval.py::evaluate_reward``), kept exact.

    Per include clause with n = all kept objects of its class (not only the ``count`` most
    confident), credits are appended to one list:

    - count: ``1 - |count - n| / count`` (negative once n > 2 count, as in the reference);
    - n != count: the clause fails; one extra 0 if it has a colour or a position;
    - colour (n == count): ``1 - |count - #objects of that colour| / count``; fails unless all match;
    - position (clause still matched): no target -> 0; else 1, preceded by a 0 when some pair
      is in the wrong relation (the reference appends 1 after a failure too).

    The score is the mean of all credits. Exclude clauses are ignored, as in the reference;
    ``strict_correct`` means every include clause matched with exact counts.
    """
    credits: list[float] = []
    reasons: list[str] = []
    groups: list[list[Detection] | None] = []
    for req in metadata.get("include", []):
        found = list(objects.get(req["class"], []))
        clause, failure = _partial_clause(req, found, groups, colors, position_threshold)
        credits += clause
        if failure:
            reasons.append(failure)
        groups.append(None if failure else found)
    score = sum(credits) / len(credits) if credits else 0.0
    return PartialVerdict(not reasons, score, "\n".join(reasons))


def accuracy_by_tag(tags: Iterable[str], correct: Iterable[bool]) -> dict[str, float]:
    """Accuracy per tag (in ``TAGS`` order), and ``overall``: the mean of the per-tag accuracies.

    As GenEval's ``summary_scores.py``, ``overall`` averages the tags present; on a full GenEval set
    that is the mean over the six tags. An unknown tag is an error.
    """
    hits: dict[str, list[bool]] = {}
    for tag, ok in zip(tags, correct, strict=True):
        if tag not in TAGS:
            raise ValueError(f"unknown GenEval tag {tag!r}; expected one of {TAGS}")
        hits.setdefault(tag, []).append(bool(ok))
    if not hits:
        raise ValueError("no scored images: the accuracy table needs at least one")
    table = {tag: sum(hits[tag]) / len(hits[tag]) for tag in TAGS if tag in hits}
    table["overall"] = sum(table.values()) / len(table)
    return table
