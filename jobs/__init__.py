"""What the trainer's jobs (``guard``) and the scoring jobs (``eval``) share: the run config and the job arguments.

Imports neither ``guard`` nor ``eval``, so both may import it.
"""
