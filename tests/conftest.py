"""Offline test session: no hub access, and nothing read from or written to the user's hub cache."""

import atexit
import os
import shutil
import tempfile

# Set before anything imports huggingface_hub (setting it later caused minutes of retries).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
if "GRPO_GUARD_TEST_HF_HOME" in os.environ:
    os.environ["HF_HOME"] = os.environ["GRPO_GUARD_TEST_HF_HOME"]
else:  # an empty cache for this session, removed by the process that made it (not by forked workers)
    os.environ["HF_HOME"], _OWNER = tempfile.mkdtemp(prefix="hf_home_"), os.getpid()
    atexit.register(lambda: os.getpid() == _OWNER and shutil.rmtree(os.environ["HF_HOME"], ignore_errors=True))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
