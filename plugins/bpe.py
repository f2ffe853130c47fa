"""A small byte-level BPE trained on the synthetic suite's texts: the vocabulary of the tiny models."""

from __future__ import annotations

from typing import Sequence

END_OF_TEXT = "<|endoftext|>"


def train_tokenizer(texts: Sequence[str], vocab_size: int, specials: Sequence[str] = ()):
    """A byte-level BPE of ``vocab_size`` tokens (the last ones ``specials``, then ``<|endoftext|>``), as a
    Hugging Face tokenizer that ``AutoTokenizer.from_pretrained`` loads back from its directory."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    learned = vocab_size - 1 - len(specials)
    trainer = trainers.BpeTrainer(vocab_size=learned, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(texts, trainer)
    if tokenizer.get_vocab_size() != learned:
        raise ValueError(f"the corpus supports only {tokenizer.get_vocab_size()} BPE tokens, not {learned}; "
                         "use a configuration with a smaller vocabulary")
    tokenizer.add_special_tokens([*specials, END_OF_TEXT])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=END_OF_TEXT, eos_token=END_OF_TEXT,
                                   unk_token=END_OF_TEXT, model_max_length=1024)
