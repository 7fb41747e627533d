"""``python -m eval.prompts manifest|fetch``: validate prompt files into a manifest, or download a public one."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from eval.prompts.manifest import build_manifest, fetch_command, source_url
from eval.prompts.records import LOADERS, PromptFileError


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry; exit 0 ok, 1 malformed file, 2 missing file or bad usage."""
    parser = argparse.ArgumentParser(prog="python -m eval.prompts", description="Prompt files.")
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


if __name__ == "__main__":
    sys.exit(main())
