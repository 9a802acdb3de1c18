"""Regenerate tiny-llama/: a Llama-shaped model config and a byte-level BPE tokenizer.

The starter kit trains this model from its config (``init: random``) so that the whole
pipeline runs on any machine with no download. Run from the checkout:
python jobs/models/make_tiny.py (needs the ``train`` extra: transformers, tokenizers).
"""

from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, PreTrainedTokenizerFast

here = Path(__file__).resolve().parent
target = here / "tiny-llama"
data = here.parent / "data"

bpe = Tokenizer(models.BPE())
bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
bpe.decoder = decoders.ByteLevel()
trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=["<pad>", "<s>", "</s>"],
                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
bpe.train([str(data / "cpt.txt"), str(data / "sft.jsonl")], trainer)
special = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>"}
tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, **special)
tokenizer.save_pretrained(str(target))

config = LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=176,
                     num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                     max_position_embeddings=512, tie_word_embeddings=False,
                     pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                     eos_token_id=tokenizer.eos_token_id)
config.save_pretrained(str(target))
print(f"wrote {target}: {sorted(p.name for p in target.iterdir())}")
