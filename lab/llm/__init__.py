"""LLM probes: a small offline base model, LoRA/QLoRA, sweeps, forgetting, attention and activations."""

import logging
import os

# Never reach the model hub: every model comes from a local directory or a package in site-packages.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
# Our own rich progress bars report training; library bars and bitsandbytes' note about an optional
# CPU kernel package would only clutter the output.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
