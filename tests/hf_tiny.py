"""Tiny random audio chat models of real transformers architectures, for the ``hf`` plugin's tests.

Each is built the way a released checkpoint is laid out (config, weights, tokenizer with the special
tokens its chat template needs, the real feature extractor, the chat template) and saved with
``save_pretrained``, so the plugin loads it through its ordinary loading code."""

from __future__ import annotations

from pathlib import Path

#: words the tiny BPE learns from: the suite's prompts and labels, and the templates' own words
CORPUS = ("system user assistant you are a helpful assistant audio this is a sound of what do you hear "
          "which clip is longer dog rain car engine starting sine tone noise beep chirp click buzz bell "
          "siren pluck rumble how many times describe the answer question one two three four five")

QWEN_TEMPLATE = (
    "{% set audio_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}{% if content['type'] == 'audio' %}"
    "{% set audio_count.value = audio_count.value + 1 %}Audio {{ audio_count.value }}: <|audio_bos|><|AUDIO|><|audio_eos|>\n"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def _chatml(audio: str) -> str:
    """A ChatML template (AF3 and GLM-ASR checkpoints ship one like it) writing ``audio`` for each clip."""
    return ("{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
            "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
            "{% for content in message['content'] %}{% if content['type'] == 'audio' %}" + audio +
            "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}"
            "{% if not (loop.last and continue_final_message) %}<|im_end|>\n{% endif %}{% endfor %}"
            "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


ARCHITECTURES = {
    "qwen2_audio": {"special": ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>",
                                "<|audio_eos|>"], "audio_token": "<|AUDIO|>", "template": QWEN_TEMPLATE},
    "audioflamingo3": {"special": ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<sound>"],
                       "audio_token": "<sound>", "template": _chatml("<sound>")},
    "glmasr": {"special": ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>", "<|begin_of_audio|>",
                           "<|end_of_audio|>"], "audio_token": "<|pad|>",
               "template": _chatml("<|begin_of_audio|><|pad|><|end_of_audio|>")},
}


def tokenizer(special: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator([CORPUS] * 4, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   extra_special_tokens=special[1:])


def _config(arch: str, vocab: int, audio_token_id: int, eos: int, pad: int):
    from transformers import AudioFlamingo3Config, GlmAsrConfig, Qwen2AudioConfig

    text = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                num_key_value_heads=1, vocab_size=vocab, max_position_embeddings=2048, eos_token_id=eos,
                pad_token_id=pad, tie_word_embeddings=False)
    if arch == "qwen2_audio":
        audio = dict(d_model=32, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=64, num_mel_bins=128)
        return Qwen2AudioConfig(audio_config=audio, text_config={"model_type": "qwen2", **text},
                                audio_token_id=audio_token_id)
    if arch == "audioflamingo3":
        audio = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                     num_mel_bins=128)
        return AudioFlamingo3Config(audio_config=audio, text_config={"model_type": "qwen2", **text},
                                    audio_token_id=audio_token_id)
    audio = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, num_mel_bins=128)
    return GlmAsrConfig(audio_config=audio, text_config={"model_type": "llama", **text}, audio_token_id=audio_token_id)


def build(arch: str, directory: Path, seed: int = 0) -> Path:
    """Save a tiny random ``arch`` checkpoint (config, weights, tokenizer, processor) into ``directory``."""
    import torch
    import transformers
    from transformers import AutoProcessor, GenerationConfig, WhisperFeatureExtractor

    spec = ARCHITECTURES[arch]
    tok = tokenizer(spec["special"])
    ids = tok.convert_tokens_to_ids
    config = _config(arch, len(tok), ids(spec["audio_token"]), ids("<|im_end|>"), ids("<|endoftext|>"))
    torch.manual_seed(seed)
    cls = {"qwen2_audio": "Qwen2AudioForConditionalGeneration", "audioflamingo3": "AudioFlamingo3ForConditionalGeneration",
           "glmasr": "GlmAsrForConditionalGeneration"}[arch]
    net = getattr(transformers, cls)(config).eval()
    with torch.no_grad():  # larger random weights than the default init, so texts and scores vary with the audio
        for p in net.parameters():
            p.normal_(0, 0.2)
    net.generation_config = GenerationConfig(eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"),
                                             max_new_tokens=12, do_sample=False)
    features = WhisperFeatureExtractor(feature_size=128)
    processor_cls = {"qwen2_audio": "Qwen2AudioProcessor", "audioflamingo3": "AudioFlamingo3Processor",
                     "glmasr": "GlmAsrProcessor"}[arch]
    processor = getattr(transformers, processor_cls)(features, tok, chat_template=spec["template"])
    directory = Path(directory)
    net.save_pretrained(directory)
    processor.save_pretrained(directory)
    AutoProcessor.from_pretrained(directory)  # fails here, not in a test, if something was not saved
    return directory
