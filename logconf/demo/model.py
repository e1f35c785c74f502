"""Build the tiny random Llama the demo serves, since nothing can come from a model hub."""

from __future__ import annotations

import os
import shutil

# The tokenizer's vocabulary: three special tokens, then words w0..w508, one id per model row.
SPECIAL_TOKENS = ("<unk>", "<s>", "</s>")  # ids 0, 1 (bos), 2 (eos)
VOCAB_SIZE = 512
WORDS = tuple(f"w{i}" for i in range(VOCAB_SIZE - len(SPECIAL_TOKENS)))


def build_tiny_llama(directory: str) -> str:
    """Save a 2-layer random Llama (about 6 MB) and a word-level tokenizer in ``directory``.

    Nothing happens if both are already there. A directory with the model but no tokenizer (an
    older build) is rebuilt whole; the same seed gives the same weights. The HTTP servers (vLLM's
    OpenAI server, SkyRL's) need the tokenizer; the demo's engines skip it.
    """
    if os.path.isfile(os.path.join(directory, "config.json")) and os.path.isfile(os.path.join(directory, "tokenizer.json")):
        return directory
    import torch
    from tokenizers import Tokenizer  # type: ignore[import-not-found]
    from tokenizers.models import WordLevel  # type: ignore[import-not-found]
    from tokenizers.pre_tokenizers import WhitespaceSplit  # type: ignore[import-not-found]
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(0)
    # head_dim 64: the CPU attention backend refuses 16.
    config = LlamaConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
        bos_token_id=1,
        eos_token_id=2,
    )
    partial = directory + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    LlamaForCausalLM(config).save_pretrained(partial)
    vocab = {token: i for i, token in enumerate((*SPECIAL_TOKENS, *WORDS))}
    words = Tokenizer(WordLevel(vocab=vocab, unk_token="<unk>"))
    words.pre_tokenizer = WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=words, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    tokenizer.save_pretrained(partial)
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(partial, directory)
    return directory
