"""Benchmarks and cost planning (python -m bench.plan, bench/gpu_check.py)."""
