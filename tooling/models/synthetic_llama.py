#!/usr/bin/env python3
"""Write a random-weights llama GGUF that uses a source model's tokenizer, sized so that one decode
costs what a real model's does (for benchmarks: the text it writes is noise).

usage: synthetic_llama.py SOURCE.gguf OUT.gguf [--dim 768] [--layers 12] [--ff 2048] [--heads 8]

Run through `npm run models:synthetic` (tooling/syntheticModels.ts), which finds numpy (Debian:
python3-numpy) and gguf-py (inside the llama.cpp source node-llama-cpp bundles) and caches the result.
Measured on a 2-core machine, llama-bench threads 1: --dim 768 --layers 12 --ff 2048 (85.7 M parameters,
F16, 164 MiB) decodes 117 tokens/s, about 8.5 ms a token; --dim 512 --layers 8 --ff 1408 (26 M) 475 tokens/s.
"""
import argparse
import numpy as np
from gguf import GGUFReader, GGUFWriter

p = argparse.ArgumentParser()
p.add_argument('source'); p.add_argument('out')
p.add_argument('--dim', type=int, default=768); p.add_argument('--layers', type=int, default=12)
p.add_argument('--ff', type=int, default=2048); p.add_argument('--heads', type=int, default=8)
a = p.parse_args()

src = GGUFReader(a.source).fields
tokens = src['tokenizer.ggml.tokens'].contents()
w = GGUFWriter(a.out, 'llama')
w.add_name('synthetic-llama'); w.add_context_length(2048); w.add_embedding_length(a.dim)
w.add_feed_forward_length(a.ff); w.add_head_count(a.heads); w.add_head_count_kv(a.heads)
w.add_block_count(a.layers); w.add_rope_dimension_count(a.dim // a.heads); w.add_layer_norm_rms_eps(1e-5)
w.add_tokenizer_model('llama'); w.add_token_list(tokens)
w.add_token_scores(src['tokenizer.ggml.scores'].contents()); w.add_token_types(src['tokenizer.ggml.token_type'].contents())
w.add_unk_token_id(0); w.add_bos_token_id(1); w.add_eos_token_id(2)

rng = np.random.default_rng(0)
def weight(name, *shape):
    w.add_tensor(name, (rng.standard_normal(shape) * 0.02).astype(np.float16))
def ones(name, n):
    w.add_tensor(name, np.ones(n, np.float32))

vocab = len(tokens)
weight('token_embd.weight', vocab, a.dim); ones('output_norm.weight', a.dim); weight('output.weight', vocab, a.dim)
for i in range(a.layers):
    b = f'blk.{i}.'
    for t in ('attn_q', 'attn_k', 'attn_v', 'attn_output'):
        weight(b + t + '.weight', a.dim, a.dim)
    ones(b + 'attn_norm.weight', a.dim); ones(b + 'ffn_norm.weight', a.dim)
    weight(b + 'ffn_gate.weight', a.ff, a.dim); weight(b + 'ffn_up.weight', a.ff, a.dim); weight(b + 'ffn_down.weight', a.dim, a.ff)
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
print(a.out)
