"""Models shared by server and client: presets, loading, LoRA, adapters, records and collation."""

from transformers.utils import logging as hf_logging

hf_logging.disable_progress_bar()  # fedvlm shows its own progress; HF's per-file bars only add noise
