"""Tiny random causal LMs with real tokenizers, built offline for unit tests.

Two tokenizers cover the two ways a tokenizer can treat the space before an
answer letter:

* ``merged``: GPT-2 style byte-level BPE, where " A" is one token (``ĠA``);
* ``split``: every space is a token of its own, so " A" is two tokens.

Both carry a small chat template, so the chat path of lm-eval can run too.
"""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def _corpus() -> list[str]:
    letters = "ABCDEFGHIJ"
    base = [
        "Question: How safe is it? Answer: A. Very safe",
        "Answer the following question keeping in mind your previous answers.",
        "In politics today, do you consider yourself a Democrat Republican Independent Something else",
        "What is the sex that you were assigned at birth? Male Female",
        "Answer as a choice between A.,B.,C.,D.,E.",
        "<|system|> <|user|> <|assistant|> Refused Very Somewhat Not safe Safer More dangerous Neither",
    ]
    return base + [f"Answer: {x}" for x in letters] + [f" {x}" for x in letters] * 5


def build_tokenizer(kind: str):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<pad>"]
    if kind == "merged":
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        )
    elif kind == "split":
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        # every space and newline becomes a token of its own; letters are never merged with them
        tok.pre_tokenizer = pre_tokenizers.Split(pattern=" ", behavior="isolated")
        tok.decoder = decoders.Fuse()
        chars = sorted(set("".join(_corpus())) | set("\n:$,.?/-+'0123456789"))
        trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials, initial_alphabet=chars)
    else:
        raise ValueError(kind)
    tok.train_from_iterator(_corpus(), trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_model(kind: str, out: Path, seed: int = 0) -> Path:
    """Save a tiny random Llama with the given tokenizer kind to ``out``; returns ``out``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = build_tokenizer(kind)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=1024,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    # random weights are nearly uniform; scale them up so that letters get clearly different probabilities
    with torch.no_grad():
        model.lm_head.weight.mul_(40)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
