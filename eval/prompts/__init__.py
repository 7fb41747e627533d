"""Prompt sets of the paper's tasks, split by job.

- ``records``: the typed records (GenEval, OCR, PickScore), their loaders and the line policy;
- ``draw``: the per-epoch K-repeat draw the trainer samples prompts with;
- ``manifest``: manifests of prompt files and downloads of the public ones;
- ``python -m eval.prompts manifest|fetch``: the command line of ``manifest``.
"""
