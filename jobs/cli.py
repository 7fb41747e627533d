"""What every ``python -m`` job entry point shares: the ``--config`` / ``--threads`` arguments and torch set-up."""

from __future__ import annotations

import argparse

import torch


def job_parser(doc: str, config_help: str) -> argparse.ArgumentParser:
    """An argument parser with ``--config`` (required) and ``--threads``; ``doc``'s first paragraph describes it."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--config", required=True, help=config_help)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads; keep it at the job's cores (oversubscribed torch runs 100x slower)")
    return parser


def init_torch(threads: int) -> None:
    """Pin torch's CPU threads and flush denormals (they slowed nano training and fits 20-50x)."""
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
