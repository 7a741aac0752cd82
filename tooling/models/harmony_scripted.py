#!/usr/bin/env python3
"""Write a gpt-oss GGUF whose weights are built by hand so that it answers every chat with one fixed
Harmony reply: `<|channel|>analysis<|message|>THOUGHT<|end|><|start|>assistant<|channel|>final<|message|>ANSWER<|return|>`,
where THOUGHT names the reasoning level its prompt carries (`Reasoning: low|medium|high`).

usage: harmony_scripted.py O200K_RANKS.js TEMPLATE.jinja OUT.gguf SCRIPT.json
SCRIPT.json: {"thought": {"low": [ids], "medium": [ids], "high": [ids]}, "answer": [ids]}: the token ids of
the thought for each level (the same but for the level's token) and of the answer (o200k, from js-tiktoken).

How it works (no training; every weight below is set on purpose, the rest are zero):
- The residual stream has one dimension per token the script uses (a one-hot embedding; any other token
  embeds as zero) and five feature dimensions: `analysis` has appeared, the thought's first token has
  appeared, and which of ` low`, ` medium`, ` high` has appeared.
- Layer 1 (a full-attention layer) has three heads that detect presence without positions: their query is a
  constant (the query bias) and only the marker tokens have a key, so a head attends to its markers wherever
  they are and writes its feature; with no marker it attends to tokens whose value is zero. RoPE cannot
  move them: the keys and queries live in the last rotary pair and the RoPE base is 1e30, so that pair
  turns by less than 1e-28 radians a token. Layer 0 (sliding window) and all experts are zero.
- The output matrix reads (current token, features) and names the next token: a linear classifier
  solved over every state the reply passes through (scripted_readout.py), with a margin of MARGIN
  logits over every other token. The features settle what the current token cannot: `<|channel|>` is followed by `analysis`
  before a thought exists and by `final` after; `<|message|>` by the thought's first token before it
  appeared and by the answer's after; ` with` by the level the prompt names.
- Thoughts of earlier turns never reach the prompt (Harmony drops them), so each turn starts afresh; an
  earlier turn's final answer in the prompt changes nothing, since no head looks for answer tokens.
"""
import json
import sys
import numpy as np
from gguf import GGUFWriter
from gpt_oss import Dims, add_hparams
from harmony_vocab import add_harmony_tokenizer
from scripted_readout import script_readout, scripted_tensors

MARGIN = 40.0
CHANNEL, START, END, MESSAGE, RETURN = 200005, 200006, 200007, 200008, 200002
ANALYSIS, FINAL, ASSISTANT = 35644, 17196, 173781
LEVELS = ('low', 'medium', 'high')

ranks, template, out, script_path = sys.argv[1:5]
script = json.load(open(script_path))
thoughts = {level: script['thought'][level] for level in LEVELS}
answer = script['answer']
# The thoughts differ in one token: the level's.
low_at = next(i for i, (a, b) in enumerate(zip(thoughts['low'], thoughts['medium'])) if a != b)
level_tokens = {level: thoughts[level][low_at] for level in LEVELS}
marker = thoughts['low'][0]

# Every token that is ever the current one while the reply is written gets a dimension of its own.
vocab_used = [ASSISTANT, CHANNEL, ANALYSIS, MESSAGE, FINAL, START, END]
for sequence in (*thoughts.values(), answer):
    vocab_used += [t for t in sequence if t not in vocab_used]
steps = [*thoughts['low'], *answer]
assert len(set(steps)) == len(steps), 'the thought and the answer must not repeat a token'
assert not set(steps) & {ASSISTANT, CHANNEL, ANALYSIS, MESSAGE, FINAL, START, END, RETURN}
dims = Dims(dim=64, layers=2, heads=8, kv_heads=4, head_dim=64, experts=32, experts_used=4, ff=64,
            sliding_window=128, context=131072, rope_base=1e30, yarn_original_context=None)
F_ANALYSIS, F_THOUGHT = len(vocab_used), len(vocab_used) + 1
F_LEVEL = {level: len(vocab_used) + 2 + i for i, level in enumerate(LEVELS)}
assert F_LEVEL['high'] < dims.dim
slot = {token: i for i, token in enumerate(vocab_used)}


def states():
    """(current token, features, next token) for every step of the reply, at each level."""
    for level in LEVELS:
        thought = thoughts[level]
        base = {F_LEVEL[level]}
        before = [(ASSISTANT, CHANNEL), (CHANNEL, ANALYSIS)]
        yield from ((tok, base, nxt) for tok, nxt in before)
        yield ANALYSIS, base | {F_ANALYSIS}, MESSAGE
        yield MESSAGE, base | {F_ANALYSIS}, thought[0]
        seen = base | {F_ANALYSIS, F_THOUGHT}
        path = [*thought, END, START, ASSISTANT, CHANNEL, FINAL, MESSAGE, *answer, RETURN]
        yield from ((tok, seen, nxt) for tok, nxt in zip(path, path[1:]))


writer = GGUFWriter(out, 'gpt-oss')
add_hparams(writer, dims, 'harmony-scripted')
add_harmony_tokenizer(writer, ranks, template)

q, kv, head = dims.heads * dims.head_dim, dims.kv_heads * dims.head_dim, dims.head_dim
pair = head // 2 - 1  # the slowest rotary pair: with base 1e30 it does not turn
tensors = scripted_tensors(dims, slot, *script_readout(list(states()), slot, dims.dim, MARGIN))

# Layer 1, query head 2j reads key/value head j (GQA, 2 query heads per key head); odd heads stay silent.
detectors = [([ANALYSIS], [F_ANALYSIS]), ([marker], [F_THOUGHT]),
             ([level_tokens[l] for l in LEVELS], [F_LEVEL[l] for l in LEVELS])]
b = 'blk.1.'
for j, (markers, features) in enumerate(detectors):
    tensors[b + 'attn_q.bias'][2 * j * head + pair] = 8.0
    for m, (token, feature) in enumerate(zip(markers, features)):
        # At a marker the normalized input is 8 (sqrt(64)) in its dimension: score 8 * 8 * 8 / sqrt(64) = 64.
        tensors[b + 'attn_k.weight'][j * head + pair, slot[token]] = 8.0
        tensors[b + 'attn_v.weight'][j * head + m, slot[token]] = 1.0
        # The head's output there is 8; it writes 1.0 into the feature, as large as a token's one-hot.
        tensors[b + 'attn_output.weight'][feature, 2 * j * head + m] = 1.0 / 8

for name, values in tensors.items():
    two_d = values.ndim >= 2 and not name.endswith('.bias')
    writer.add_tensor(name, values.astype(np.float16 if two_d else np.float32))
writer.write_header_to_file()
writer.write_kv_data_to_file()
writer.write_tensors_to_file()
writer.close()
