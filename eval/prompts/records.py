"""Prompt files of the paper's tasks: typed records and their loaders.

Formats (as published in Flow-GRPO's ``dataset/`` folder and GenEval's ``prompts/`` folder):

- GenEval metadata JSONL (``evaluation_metadata.jsonl``, Flow-GRPO's ``geneval/*_metadata.jsonl``):
  one object per line with ``tag``, ``prompt``, ``include`` objects (``class``, ``count``, optional
  ``color``, optional ``position`` = [relation, index of the reference object in ``include``]) and
  optional ``exclude`` objects (``class``, ``count``).
- OCR prompt list (``ocr/*.txt``): one prompt per line; the target text is what lies between the
  first pair of double quotes, as Flow-GRPO's OCR reward reads it (``prompt.split('"')[1]``).
- PickScore prompt list (``pickscore/*.txt``): one prompt per line.

Line policy, the same for every loader and recorded in each ``LoadReport``: a malformed line raises
``PromptFileError`` naming the file and the 1-based line; an empty prompt (blank line, or a blank
``prompt`` field) is dropped and its line reported; a repeated prompt is kept and its line reported.
Repeats are kept because they are deliberate in the published files (Flow-GRPO's GenEval test set
holds each of GenEval's 553 prompts four times) and the reference trainers sample them as they are.
Text lines are stripped of surrounding whitespace, as Flow-GRPO's ``TextPromptDataset`` does.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generic, Protocol, Sequence, TypeVar

EMPTY_POLICY = "dropped"
DUPLICATE_POLICY = "kept"
RELATIONS = ("left of", "right of", "above", "below")
FLOW_GRPO_DATASETS = "https://github.com/yifan123/flow_grpo/tree/main/dataset"
GENEVAL_PROMPTS = "https://github.com/djghosh13/geneval/tree/main/prompts"
SOURCES = {
    "geneval": f"GenEval's prompts/ folder ({GENEVAL_PROMPTS}) or the Flow-GRPO repository's "
    f"dataset/geneval/ folder ({FLOW_GRPO_DATASETS})",
    "ocr": f"the Flow-GRPO repository's dataset/ocr/ folder ({FLOW_GRPO_DATASETS})",
    "pickscore": f"the Flow-GRPO repository's dataset/pickscore/ folder ({FLOW_GRPO_DATASETS})",
}


class PromptFileError(ValueError):
    """A malformed line of a prompt file; the message reads ``path:line: reason``."""

    def __init__(self, path: Path, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.path, self.line, self.reason = path, line, reason


class HasPrompt(Protocol):
    """Anything with a prompt string (the records below, or a caller's own)."""

    @property
    def prompt(self) -> str:
        """The prompt text."""


@dataclass(frozen=True)
class Position:
    """GenEval's spatial constraint: this object lies ``relation`` the include object ``index``."""

    relation: str
    index: int


@dataclass(frozen=True)
class IncludeObject:
    """An object that must appear ``count`` times (exactly, for GenEval's counting tag)."""

    cls: str
    count: int
    color: str | None = None
    position: Position | None = None


@dataclass(frozen=True)
class ExcludeObject:
    """An object class that must appear fewer than ``count`` times."""

    cls: str
    count: int


@dataclass(frozen=True)
class GenEvalRecord:
    """One GenEval metadata line; ``line`` is its 1-based line number in the source file."""

    prompt: str
    tag: str
    include: tuple[IncludeObject, ...]
    exclude: tuple[ExcludeObject, ...]
    line: int

    def to_metadata(self) -> dict[str, Any]:
        """The line's original JSON object, the form GenEval's evaluator and reward consume."""
        include = [_include_dict(o) for o in self.include]
        meta: dict[str, Any] = {"tag": self.tag, "include": include}
        if self.exclude:
            meta["exclude"] = [{"class": o.cls, "count": o.count} for o in self.exclude]
        meta["prompt"] = self.prompt
        return meta


@dataclass(frozen=True)
class OcrRecord:
    """One text-rendering prompt and the text the image must show."""

    prompt: str
    target: str
    line: int


@dataclass(frozen=True)
class PromptRecord:
    """One plain prompt (PickScore and other prompt lists)."""

    prompt: str
    line: int


L = TypeVar("L", bound=HasPrompt)


@dataclass(frozen=True)
class LoadReport:
    """What a loader found besides records: empty and repeated prompts, by 1-based line.

    ``duplicate_lines`` are the lines whose prompt text already occurred on an earlier line;
    ``n_duplicated_prompts`` counts the distinct prompt texts that occur more than once.
    """

    path: str
    n_lines: int
    n_records: int
    empty_lines: tuple[int, ...]
    duplicate_lines: tuple[int, ...]
    n_duplicated_prompts: int
    empty_policy: str = EMPTY_POLICY
    duplicate_policy: str = DUPLICATE_POLICY

    def summary(self) -> str:
        """One log line."""
        return (
            f"{self.path}: {self.n_records} records from {self.n_lines} lines; "
            f"{len(self.empty_lines)} empty ({self.empty_policy}); "
            f"{len(self.duplicate_lines)} repeats of {self.n_duplicated_prompts} prompts "
            f"({self.duplicate_policy})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for manifests."""
        return {
            "path": self.path,
            "n_lines": self.n_lines,
            "n_records": self.n_records,
            "empty_lines": list(self.empty_lines),
            "empty_policy": self.empty_policy,
            "duplicate_lines": list(self.duplicate_lines),
            "n_duplicated_prompts": self.n_duplicated_prompts,
            "duplicate_policy": self.duplicate_policy,
        }


@dataclass(frozen=True)
class Loaded(Generic[L]):
    """Records of one file, in file order, with the report of what was dropped or repeated."""

    records: tuple[L, ...]
    report: LoadReport


def load_geneval(path: str | Path) -> Loaded[GenEvalRecord]:
    """Load a GenEval metadata JSONL file."""
    return _load(Path(path), "geneval", _parse_geneval)


def load_ocr(path: str | Path) -> Loaded[OcrRecord]:
    """Load an OCR prompt list; every non-empty line needs a non-empty "quoted" target."""
    return _load(Path(path), "ocr", _parse_ocr)


def load_pickscore(path: str | Path) -> Loaded[PromptRecord]:
    """Load a plain prompt list (one prompt per line)."""
    return _load(Path(path), "pickscore", _parse_plain)


LOADERS: dict[str, Callable[[str | Path], Loaded[Any]]] = {
    "geneval": load_geneval,
    "ocr": load_ocr,
    "pickscore": load_pickscore,
}

TASK_FILES: dict[str, tuple[str, str]] = {
    "geneval": ("train_metadata.jsonl", "test_metadata.jsonl"),
    "ocr": ("train.txt", "test.txt"),
    "pickscore": ("train.txt", "test.txt"),
}
"""Task -> (training, test) file names inside a prompts folder (Flow-GRPO's ``dataset/<task>/`` layout)."""


def task_files(task: str, folder: str | Path) -> tuple[Path, Path]:
    """The training and test prompt files of ``task`` in ``folder``."""
    if task not in TASK_FILES:
        raise ValueError(f"no prompt files known for task {task!r}; known: {sorted(TASK_FILES)}")
    train, test = TASK_FILES[task]
    return Path(folder) / train, Path(folder) / test


def load_task_file(task: str, path: str | Path) -> list[str]:
    """The prompts of one file of ``task``, in file order (see the line policy above)."""
    return [record.prompt for record in LOADERS[task](path).records]


def ocr_target(prompt: str) -> str:
    """Text between the first pair of double quotes; ValueError if none or blank."""
    parts = prompt.split('"')
    if len(parts) < 3:
        raise ValueError('no "quoted" target text')
    if not parts[1].strip():
        raise ValueError('empty "quoted" target text')
    return parts[1]


def tag_histogram(records: Sequence[GenEvalRecord]) -> dict[str, int]:
    """Number of records per GenEval tag, sorted by tag."""
    return dict(sorted(Counter(r.tag for r in records).items()))


def _read_lines(path: Path, task: str) -> list[bytes]:
    """Raw lines without their terminators; a missing file names where to get it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        message = f"{path}: no such prompt file; get it from {SOURCES[task]}"
        raise FileNotFoundError(message) from None
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return [line.removesuffix(b"\r") for line in lines]


def _load(path: Path, task: str, parse: Callable[[str, int], L | None]) -> Loaded[L]:
    """Parse every line; drop and report empty prompts, keep and report repeated ones."""
    lines = _read_lines(path, task)
    records: list[L] = []
    empty: list[int] = []
    seen: set[str] = set()
    repeated: set[str] = set()
    repeat_lines: list[int] = []
    for number, raw in enumerate(lines, start=1):
        try:
            record = parse(_decode(raw), number)
        except ValueError as err:
            raise PromptFileError(path, number, str(err)) from err
        if record is None:
            empty.append(number)
            continue
        if record.prompt in seen:
            repeated.add(record.prompt)
            repeat_lines.append(number)
        seen.add(record.prompt)
        records.append(record)
    report = LoadReport(
        str(path), len(lines), len(records), tuple(empty), tuple(repeat_lines), len(repeated)
    )
    return Loaded(tuple(records), report)


def _decode(raw: bytes) -> str:
    """A line as UTF-8 text."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"not UTF-8 (byte {err.start + 1})") from None


def _parse_plain(text: str, line: int) -> PromptRecord | None:
    """A stripped prompt line, or None when blank."""
    prompt = text.strip()
    return PromptRecord(prompt, line) if prompt else None


def _parse_ocr(text: str, line: int) -> OcrRecord | None:
    """A stripped prompt line with its quoted target, or None when blank."""
    prompt = text.strip()
    return OcrRecord(prompt, ocr_target(prompt), line) if prompt else None


def _parse_geneval(text: str, line: int) -> GenEvalRecord | None:
    """A validated GenEval metadata object, or None when the line or its prompt is blank."""
    if not text.strip():
        return None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"bad JSON: {err.msg} at column {err.colno}") from None
    _check_keys(obj, required={"tag", "prompt", "include"}, optional={"exclude"}, where="record")
    include = _get(obj, "include", list, "record")
    if not include:
        raise ValueError("record.include is empty")
    exclude = _get(obj, "exclude", list, "record", [])
    record = GenEvalRecord(
        prompt=_get(obj, "prompt", str, "record"),
        tag=_get(obj, "tag", str, "record"),
        include=tuple(_include(o, i, len(include)) for i, o in enumerate(include)),
        exclude=tuple(_exclude(o, i) for i, o in enumerate(exclude)),
        line=line,
    )
    return record if record.prompt.strip() else None


def _include(obj: Any, i: int, n: int) -> IncludeObject:
    """One validated ``include`` object; a position must point at another include object."""
    where = f"include[{i}]"
    _check_keys(obj, required={"class", "count"}, optional={"color", "position"}, where=where)
    position = _get(obj, "position", list, where, None)
    return IncludeObject(
        cls=_get(obj, "class", str, where),
        count=_count(obj, where),
        color=_get(obj, "color", str, where, None),
        position=None if position is None else _position(position, i, n, where),
    )


def _exclude(obj: Any, i: int) -> ExcludeObject:
    """One validated ``exclude`` object."""
    where = f"exclude[{i}]"
    _check_keys(obj, required={"class", "count"}, optional=set(), where=where)
    return ExcludeObject(cls=_get(obj, "class", str, where), count=_count(obj, where))


def _position(value: list[Any], i: int, n: int, where: str) -> Position:
    """``[relation, index]`` with a known relation and an index of another include object."""
    if len(value) != 2 or not isinstance(value[0], str) or not _is_int(value[1]):
        raise ValueError(f"{where}.position must be [relation, index], got {value!r}")
    relation, index = value
    if relation not in RELATIONS:
        raise ValueError(f"{where}.position relation {relation!r} is not one of {RELATIONS}")
    if not 0 <= index < n or index == i:
        raise ValueError(f"{where}.position index {index} is not another include object")
    return Position(relation, index)


def _count(obj: dict[str, Any], where: str) -> int:
    """A positive integer ``count``."""
    count = obj["count"]
    if not _is_int(count) or count < 1:
        raise ValueError(f"{where}.count must be a positive integer, got {count!r}")
    return count


def _check_keys(obj: Any, required: set[str], optional: set[str], where: str) -> None:
    """``obj`` is an object with every required key and no unknown one (typos lose constraints)."""
    if not isinstance(obj, dict):
        raise ValueError(f"{where} must be a JSON object, got {type(obj).__name__}")
    missing = sorted(required - obj.keys())
    if missing:
        raise ValueError(f"{where} is missing field(s) {missing}")
    unknown = sorted(obj.keys() - required - optional)
    if unknown:
        raise ValueError(f"{where} has unknown field(s) {unknown}")


_MISSING = object()


def _get(obj: dict[str, Any], key: str, kind: type, where: str, default: Any = _MISSING) -> Any:
    """``obj[key]`` checked to be of ``kind``; ``default`` when absent and a default is given."""
    if key not in obj and default is not _MISSING:
        return default
    value = obj[key]
    if not isinstance(value, kind):
        raise ValueError(f"{where}.{key} must be {kind.__name__}, got {type(value).__name__}")
    return value


def _is_int(value: Any) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def _include_dict(obj: IncludeObject) -> dict[str, Any]:
    """An include object in GenEval's JSON form."""
    out: dict[str, Any] = {"class": obj.cls, "count": obj.count}
    if obj.color is not None:
        out["color"] = obj.color
    if obj.position is not None:
        out["position"] = [obj.position.relation, obj.position.index]
    return out
