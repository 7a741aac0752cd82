#!/usr/bin/env python3
"""Write a gpt-oss GGUF whose weights are set by hand so that, through node-llama-cpp's HarmonyChatWrapper with
one function offered, it calls that function once and then answers with what it was told to say:
- while the prompt holds no function result: `<|channel|>analysis<|message|>THOUGHT_CALL<|end|>`, then
  `<|start|>assistant<|channel|>commentary to=functions.NAME<|constrain|>json<|message|>ARGS<|call|>`;
- once the prompt holds a result: `<|channel|>analysis<|message|>THOUGHT_ANSWER<|end|>`, then
  `<|start|>assistant<|channel|>final<|message|>ANSWER<|return|>`.

usage: harmony_tools_scripted.py O200K_RANKS.js TEMPLATE.jinja OUT.gguf SCRIPT.json
SCRIPT.json: {"thoughtCall": [ids], "thoughtAnswer": [ids], "answer": [ids], "name": [ids], "arguments": [ids]}
(o200k token ids, from js-tiktoken; `arguments` is the compact JSON of the call's arguments).

The call, token by token, is what node-llama-cpp reads as one: it sees the prefix trigger
`<|channel|>commentary to=`, puts `<|channel|>commentary to=functions.` in the context, lets the model write
the name under a grammar that ends it with a newline, puts `...NAME<|constrain|>json<|message|>` in the
context, and lets the model write the arguments under a JSON grammar that ends them with four newlines. The
wrapper, not the model, writes `<|call|>` into the history.

How the two cases are told apart: the wrapper renders a past call and its result together,
`...<|constrain|>json<|message|>ARGS<|call|><|start|>functions.NAME to=assistant<|channel|>commentary<|message|>
RESULT<|end|>`. The result alone opens with `<|start|>functions`: `functions` follows `<|start|>` nowhere else
(the call has ` to=functions`). But llama.cpp parses `<|start|>`, `<|channel|>`, `<|message|>`, `<|constrain|>`
and `<|end|>` as special tokens even inside message text (a hack for gpt-oss in llama-vocab.cpp), so a message
can spell that out; `<|call|>` it cannot (text gives `<`, `|`, `call`, `|`, `>`). The model takes a result to
be there when both are: the result's `<|start|>functions` and the call's `<|call|>`.
- Layer 0 (sliding window of 128) has one previous-token head: its query sits on `functions`, its key on
  `<|start|>`, in the fast rotary pairs, phased so that the score peaks when `<|start|>` is one token back
  (by a margin over every other distance in the window); its attention sink takes the head everywhere else.
  It marks that `functions` token with a feature.
- Layer 1 (full attention) has four presence heads, as in harmony_scripted.py: the mark above has appeared,
  `<|call|>` has, the first thought's first token has, the second thought's has. Their queries and keys
  live in the slowest rotary pair, which RoPE base 1e9 turns by 2e-9 radians a token.
- The output matrix reads (current token, features) and names the next token (scripted_readout.py); its
  table has either without the other behave as no result, so that it reads both.
The first thought's feature may or may not be there once a result is (LlamaChatSession keeps the thought
that preceded the call in the prompt; a history without it does not): both are in the table.
Past results stay in the prompt, so every later turn of the same chat answers at once, without a call.
"""
import json
import sys
import numpy as np
from gguf import GGUFWriter
from gpt_oss import Dims, add_hparams
from harmony_vocab import add_harmony_tokenizer
from scripted_readout import script_readout, scripted_tensors

MARGIN = 40.0
# The previous-token head's score where `<|start|>` is one token back; its sink sits halfway down the margin.
PREVIOUS_TOKEN_SCORE = 160.0
RETURN, CONSTRAIN, CHANNEL, START, END, MESSAGE, CALL = 200002, 200003, 200005, 200006, 200007, 200008, 200012
ANALYSIS, FINAL, ASSISTANT = 35644, 17196, 173781
# o200k's pieces of `commentary to=functions.` (as node-llama-cpp's trigger and call prefix tokenize) and json.
COMMENT, ARY, TO, EQUALS, FUNCTIONS, DOT, JSON = 12606, 815, 316, 28, 44580, 13, 4108
NEWLINE, FOUR_NEWLINES = 198, 4707  # what ends the name and the arguments under node-llama-cpp's grammars

ranks, template, out, script_path = sys.argv[1:5]
script = json.load(open(script_path))
thought_call, thought_answer = script['thoughtCall'], script['thoughtAnswer']
answer, name, arguments = script['answer'], script['name'], script['arguments']

dims = Dims(dim=64, layers=2, heads=8, kv_heads=4, head_dim=64, experts=32, experts_used=4, ff=64,
            sliding_window=128, context=131072, rope_base=1e9, yarn_original_context=None)
# Every token that is the current one at a step, or a marker, gets a dimension of its own.
FRAME = [ASSISTANT, CHANNEL, ANALYSIS, MESSAGE, FINAL, START, END, COMMENT, ARY, TO, EQUALS, FUNCTIONS, DOT, NEWLINE,
         FOUR_NEWLINES, CONSTRAIN, JSON, CALL]
vocab_used = list(FRAME)
for sequence in (thought_call, thought_answer, answer, name, arguments):
    vocab_used += [t for t in sequence if t not in vocab_used]
slot = {token: i for i, token in enumerate(vocab_used)}
F_RESULT_HERE, F_RESULT, F_CALL, F_THOUGHT_CALL, F_THOUGHT_ANSWER = range(len(vocab_used), len(vocab_used) + 5)
assert F_THOUGHT_ANSWER < dims.dim, 'the script uses too many distinct tokens'
# The thoughts' first tokens mark them: nothing else the model writes may hold them.
for marker, thought in ((thought_call[0], thought_call), (thought_answer[0], thought_answer)):
    others = [*thought_call, *thought_answer, *answer, *name, *arguments]
    assert others.count(marker) == 1 and marker not in FRAME, 'a thought must start with its own token'


def chain(path, features):
    """The steps of writing `path` with `features` on."""
    return [(token, features, nxt) for token, nxt in zip(path, path[1:])]


def states():
    """(current token, features, next token) for every step the model writes, in both cases. node-llama-cpp
    ends the call at the arguments' four newlines; `<|return|>` after them ends the reply cleanly where no
    function is offered (the wrapper then reads the call's start as no trigger and asks for a final answer)."""
    table = []
    # Either half alone counts for nothing: a result spelled out in a message, or a call with no result after it.
    for spelled in (frozenset(), frozenset({F_RESULT}), frozenset({F_CALL})):
        table += chain([ASSISTANT, CHANNEL, ANALYSIS, MESSAGE, thought_call[0]], spelled)
        table += chain([*thought_call, END, START, ASSISTANT, CHANNEL, COMMENT, ARY, TO, EQUALS, FUNCTIONS, DOT,
                        *name, NEWLINE, CONSTRAIN, JSON, MESSAGE, *arguments, FOUR_NEWLINES, RETURN],
                       spelled | {F_THOUGHT_CALL})
    for earlier in (frozenset(), frozenset({F_THOUGHT_CALL})):
        told = frozenset({F_RESULT, F_CALL}) | earlier
        table += chain([ASSISTANT, CHANNEL, ANALYSIS, MESSAGE, thought_answer[0]], told)
        table += chain([*thought_answer, END, START, ASSISTANT, CHANNEL, FINAL, MESSAGE, *answer, RETURN],
                       told | {F_THOUGHT_ANSWER})
    successor = {}
    for token, features, nxt in table:
        assert successor.setdefault((token, features), nxt) == nxt, f'token {token} has two successors'
    return table


def previous_token_phases():
    """Amplitudes over the rotary pairs (summing to 1) that maximize how far a key one token back outscores
    a key at any other distance of the sliding window, as a fraction of its score; and that fraction.
    A zero-sum game (a mix of pairs against a distance), solved by multiplicative weights: within 1% of
    the linear program's optimum (0.307 at base 1e9), without scipy."""
    pairs = dims.head_dim // 2 - 1  # all but the slowest, which the presence heads use
    speed = dims.rope_base ** (-2 * np.arange(pairs) / dims.head_dim)
    distances = np.arange(2, dims.sliding_window)
    shortfall = 1 - np.cos(np.outer(distances - 1, speed))
    rounds = 5000
    rate = np.sqrt(8 * np.log(len(distances)) / rounds)
    loss, picks = np.zeros(len(distances)), np.zeros(pairs)
    for _ in range(rounds):
        adversary = np.exp(-rate * (loss - loss.min()))
        best = np.argmax(adversary @ shortfall)
        picks[best] += 1
        loss += shortfall[:, best]
    amplitudes = picks / rounds
    return amplitudes, speed, (shortfall @ amplitudes).min()


writer = GGUFWriter(out, 'gpt-oss')
add_hparams(writer, dims, 'harmony-tools-scripted')
add_harmony_tokenizer(writer, ranks, template)

head = dims.head_dim
half = head // 2  # llama.cpp's NEOX RoPE pairs dimension i with i + half
tensors = scripted_tensors(dims, slot, *script_readout(states(), slot, dims.dim, MARGIN))

# Layer 0, query head 0 (key/value head 0): `<|start|>` one token before `functions` marks that `functions`.
# In layer 0 a token's normalized input is 8 (sqrt(64)) in its dimension. RoPE turns the query at position p
# by p * speed and the key at p' by p' * speed; a query pair set at angle -speed scores
# amplitude * cos(speed * (p - p' - 1)), highest one token back.
amplitudes, speed, margin = previous_token_phases()
assert margin > 0.2, margin
b = 'blk.0.'
for i, (amplitude, turn) in enumerate(zip(amplitudes, speed)):
    scale = PREVIOUS_TOKEN_SCORE * amplitude / 8  # score = 8 * scale * 8 (key) / sqrt(64)
    tensors[b + 'attn_q.weight'][i, slot[FUNCTIONS]] = scale * np.cos(turn)
    tensors[b + 'attn_q.weight'][i + half, slot[FUNCTIONS]] = -scale * np.sin(turn)
    tensors[b + 'attn_k.weight'][i, slot[START]] = 1.0 if amplitude > 0 else 0.0
tensors[b + 'attn_sinks.weight'][0] = PREVIOUS_TOKEN_SCORE * (1 - margin / 2)
tensors[b + 'attn_v.weight'][0, slot[START]] = 1.0
tensors[b + 'attn_output.weight'][F_RESULT_HERE, 0] = 1.0 / 8

# Layer 1, query head 2j reads key/value head j (GQA, 2 query heads per key head); odd heads stay silent.
# A marked `functions` holds two ones, so its normalized input is 8 / sqrt(2) in each: its key and value
# weigh sqrt(2) more to write the same 1.0.
detectors = [(slot[thought_call[0]], F_THOUGHT_CALL, 1.0), (slot[thought_answer[0]], F_THOUGHT_ANSWER, 1.0),
             (F_RESULT_HERE, F_RESULT, np.sqrt(2)), (slot[CALL], F_CALL, 1.0)]
b = 'blk.1.'
pair = half - 1  # the slowest rotary pair: with base 1e9 it turns by 2e-9 radians a token
for j, (source, feature, gain) in enumerate(detectors):
    tensors[b + 'attn_q.bias'][2 * j * head + pair] = 8.0
    # At a marker: score 8 * 8 * 8 / sqrt(64) = 64; elsewhere the key is zero.
    tensors[b + 'attn_k.weight'][j * head + pair, source] = 8.0 * gain
    tensors[b + 'attn_v.weight'][j * head, source] = gain
    # The head's output there is 8; it writes 1.0 into the feature, as large as a token's one-hot.
    tensors[b + 'attn_output.weight'][feature, 2 * j * head] = 1.0 / 8

for tensor, values in tensors.items():
    two_d = values.ndim >= 2 and not tensor.endswith('.bias')
    writer.add_tensor(tensor, values.astype(np.float16 if two_d else np.float32))
writer.write_header_to_file()
writer.write_kv_data_to_file()
writer.write_tensors_to_file()
writer.close()
