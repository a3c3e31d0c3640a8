"""LLM probes: a small offline base model, LoRA/QLoRA, sweeps, forgetting, attention and activations."""
