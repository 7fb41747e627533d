"""Offline test session: no hub access, and nothing read from or written to the user's hub cache."""

import os
import tempfile

# Set before anything imports huggingface_hub (setting it later caused minutes of retries).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HOME"] = os.environ.get("GRPO_GUARD_TEST_HF_HOME") or tempfile.mkdtemp(prefix="hf_home_")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
