"""Prompt files of the paper's tasks: typed loaders, the per-epoch K-repeat draw, a manifest CLI.

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

Usage: ``python -m guard.prompts manifest --task geneval --files a.jsonl --out manifest.json``;
``python -m guard.prompts fetch --task ocr --out datasets/flow_grpo/ocr/train.txt`` downloads a public file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generic, Protocol, Sequence, TypeVar, Union

import torch

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


# ---------------------------------------------------------------------------- per-epoch draw


P = TypeVar("P", bound=Union[str, HasPrompt])


def prompt_text(item: str | HasPrompt) -> str:
    """The prompt of a plain string or of a record."""
    return item if isinstance(item, str) else item.prompt


@dataclass(frozen=True)
class EpochDraw(Generic[P]):
    """One epoch's samples, group-contiguous: samples ``g*K .. g*K+K-1`` form group ``g``."""

    epoch: int
    index: tuple[int, ...]
    """Per sample, the position of its prompt in the sampler's prompt list."""
    group: tuple[int, ...]
    """Per sample, its group id in ``0 .. n_prompts-1``; a group's samples share one prompt."""
    items: tuple[P, ...]
    """Per sample, the prompt string or record."""

    @property
    def prompts(self) -> list[str]:
        """Per sample, the prompt text."""
        return [prompt_text(item) for item in self.items]


@dataclass(frozen=True)
class KRepeatSampler(Generic[P]):
    """Flow-GRPO's K-repeat draw: each epoch, ``n_prompts`` distinct prompts ``group_size`` times.

    The prompts of epoch ``e`` are ``torch.randperm(len(items), generator=g)[:n_prompts]`` with
    ``g`` seeded ``seed + epoch``, the same prompts Flow-GRPO's ``DistributedKRepeatSampler`` draws
    for that seed and epoch when its ``m`` (unique prompts per epoch, after its lcm rounding)
    equals ``n_prompts``.
    Departures: samples are laid out group by group instead of shuffled across ranks, and groups
    are identified by index rather than by prompt string, so repeated prompts never merge groups.
    Each draw depends on (seed, epoch) alone, so a resumed run sees the prompts of an
    uninterrupted one. As in the reference, (seed, epoch + 1) draws what (seed + 1, epoch) draws.
    "Distinct" means distinct positions in ``items``: a prompt repeated in the file can be drawn
    twice in one epoch, as in the reference.
    """

    items: Sequence[P]
    n_prompts: int
    group_size: int
    seed: int = 0

    def __post_init__(self) -> None:
        """Freeze the prompt list and check sizes once, with errors that say what to change."""
        object.__setattr__(self, "items", tuple(self.items))
        if self.n_prompts < 1:
            raise ValueError(f"n_prompts must be >= 1, got {self.n_prompts}")
        if self.group_size < 1:
            raise ValueError(f"group_size must be >= 1, got {self.group_size}")
        if self.n_prompts > len(self.items):
            raise ValueError(
                f"n_prompts={self.n_prompts} exceeds the {len(self.items)} prompts available; "
                "lower n_prompts (prompts per epoch) or use a larger prompt file"
            )
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")

    @property
    def samples_per_epoch(self) -> int:
        """``n_prompts * group_size``."""
        return self.n_prompts * self.group_size

    def draw(self, epoch: int) -> EpochDraw[P]:
        """The samples of ``epoch`` (>= 0), from (seed, epoch) alone."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        generator = torch.Generator().manual_seed(self.seed + epoch)
        chosen = torch.randperm(len(self.items), generator=generator)[: self.n_prompts].tolist()
        index = tuple(i for i in chosen for _ in range(self.group_size))
        group = tuple(g for g in range(self.n_prompts) for _ in range(self.group_size))
        return EpochDraw(epoch, index, group, tuple(self.items[i] for i in index))


# ---------------------------------------------------------------------------- manifest CLI


def file_entry(task: str, path: Path, loaded: Loaded[Any]) -> dict[str, Any]:
    """Manifest entry of one loaded file: sha256, counts, empty/repeat report, GenEval tags."""
    entry = {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(), **loaded.report.to_dict()}
    if task == "geneval":
        entry["tags"] = tag_histogram(loaded.records)
    return entry


def build_manifest(task: str, paths: Sequence[Path]) -> dict[str, Any]:
    """Load and validate every file, print its report line, and return the manifest."""
    entries = []
    for path in paths:
        loaded = LOADERS[task](path)
        print(loaded.report.summary())
        entries.append(file_entry(task, path, loaded))
    return {"task": task, "files": entries}


RAW_SOURCES = {
    "flow_grpo": "https://raw.githubusercontent.com/yifan123/flow_grpo/main/dataset",
    "geneval": "https://raw.githubusercontent.com/djghosh13/geneval/main/prompts",
}


def source_url(task: str, name: str) -> str:
    """Where a public prompt file lives: GenEval's evaluation metadata, else Flow-GRPO's dataset/<task>/<name>."""
    if name == "evaluation_metadata.jsonl":
        return f"{RAW_SOURCES['geneval']}/{name}"
    return f"{RAW_SOURCES['flow_grpo']}/{task}/{name}"


def fetch(task: str, url: str, out: Path) -> Loaded[Any]:
    """Download ``url`` to ``out`` (via a temporary file), validate it with the task's loader, and keep it."""
    tmp = out.with_name(out.name + ".part")
    out.parent.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(url, timeout=120) as response:
        tmp.write_bytes(response.read())
    LOADERS[task](tmp)  # a malformed download stays a .part file and never reaches ``out``
    tmp.replace(out)
    return LOADERS[task](out)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry; exit 0 ok, 1 malformed file, 2 missing file or bad usage."""
    parser = argparse.ArgumentParser(prog="python -m guard.prompts", description="Prompt files.")
    commands = parser.add_subparsers(dest="command", required=True)
    cmd = commands.add_parser("manifest", help="validate prompt files and write a JSON manifest")
    cmd.add_argument("--task", required=True, choices=sorted(LOADERS))
    cmd.add_argument("--files", required=True, nargs="+", type=Path, help="the task's prompt files")
    cmd.add_argument("--out", required=True, type=Path, help="manifest JSON to write")
    get = commands.add_parser("fetch", help="download a public prompt file (where the cluster has internet)")
    get.add_argument("--task", required=True, choices=sorted(LOADERS))
    get.add_argument("--out", required=True, type=Path, help="file to write; its name picks the source file")
    get.add_argument("--url", help="download from here instead of the public repository")
    args = parser.parse_args(argv)
    if args.command == "fetch":
        return fetch_command(args.task, args.out, args.url or source_url(args.task, args.out.name))
    try:
        result = build_manifest(args.task, args.files)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except PromptFileError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def fetch_command(task: str, out: Path, url: str) -> int:
    """``fetch``: exit 0 with the file in place, 1 when it is malformed, 2 when it cannot be downloaded."""
    try:
        print(fetch(task, url, out).report.summary())
    except (urllib.error.URLError, OSError) as err:
        print(f"error: cannot download {url} to {out}: {err}; copy the file there by hand "
              f"(from {SOURCES[task]})", file=sys.stderr)
        return 2
    except PromptFileError as err:
        print(f"error: {url} downloaded but malformed: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
