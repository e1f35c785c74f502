"""Build the tiny random Llama the demo serves, since nothing can come from a model hub."""

from __future__ import annotations

import os


def build_tiny_llama(directory: str) -> str:
    """Save a 2-layer random Llama (about 6 MB) in ``directory`` unless it is already there."""
    if os.path.isfile(os.path.join(directory, "config.json")):
        return directory
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    # head_dim 64: the CPU attention backend refuses 16.
    config = LlamaConfig(
        vocab_size=512,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
    )
    partial = directory + ".partial"
    LlamaForCausalLM(config).save_pretrained(partial)
    os.replace(partial, directory)
    return directory
