"""The gpt-oss architecture's GGUF layout, as llama.cpp loads it (src/models/openai-moe.cpp; the keys
convert_hf_to_gguf.py's GptOssModel writes): hyperparameters, and every tensor's name and shape.

Shapes are numpy's, the reverse of ggml's `ne`: ggml's {n_embd, n_vocab} is numpy (n_vocab, n_embd).
"""
from dataclasses import dataclass


@dataclass
class Dims:
    dim: int = 64
    layers: int = 4
    heads: int = 4
    kv_heads: int = 2
    head_dim: int = 64
    experts: int = 32
    experts_used: int = 4
    ff: int = 64
    sliding_window: int = 128
    context: int = 131072
    rope_base: float = 150000.0
    # gpt-oss-20b stretches a 4,096-token RoPE to 131,072 with YaRN (factor 32).
    yarn_original_context: int | None = 4096
    vocab: int = 201088


def add_hparams(writer, d: Dims, name: str):
    """The keys gpt-oss-20b's GGUF carries, at `d`'s sizes (even layers slide, odd ones see everything)."""
    writer.add_name(name)
    writer.add_context_length(d.context)
    writer.add_embedding_length(d.dim)
    writer.add_feed_forward_length(d.ff)
    writer.add_block_count(d.layers)
    writer.add_head_count(d.heads)
    writer.add_head_count_kv(d.kv_heads)
    writer.add_key_length(d.head_dim)
    writer.add_value_length(d.head_dim)
    writer.add_rope_freq_base(d.rope_base)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_expert_count(d.experts)
    writer.add_expert_used_count(d.experts_used)
    writer.add_expert_feed_forward_length(d.ff)
    writer.add_sliding_window(d.sliding_window)
    if d.yarn_original_context is not None:
        from gguf import RopeScalingType
        writer.add_rope_scaling_type(RopeScalingType.YARN)
        writer.add_rope_scaling_factor(d.context / d.yarn_original_context)
        writer.add_rope_scaling_orig_ctx_len(d.yarn_original_context)


def tensor_shapes(d: Dims):
    """Every tensor llama.cpp's gpt-oss loader asks for, with its numpy shape."""
    q, kv = d.heads * d.head_dim, d.kv_heads * d.head_dim
    shapes = {
        'token_embd.weight': (d.vocab, d.dim),
        'output_norm.weight': (d.dim,),
        'output.weight': (d.vocab, d.dim),
    }
    for i in range(d.layers):
        b = f'blk.{i}.'
        shapes.update({
            b + 'attn_norm.weight': (d.dim,),
            b + 'post_attention_norm.weight': (d.dim,),
            b + 'attn_q.weight': (q, d.dim), b + 'attn_q.bias': (q,),
            b + 'attn_k.weight': (kv, d.dim), b + 'attn_k.bias': (kv,),
            b + 'attn_v.weight': (kv, d.dim), b + 'attn_v.bias': (kv,),
            b + 'attn_output.weight': (d.dim, q), b + 'attn_output.bias': (d.dim,),
            b + 'attn_sinks.weight': (d.heads,),
            b + 'ffn_gate_inp.weight': (d.experts, d.dim), b + 'ffn_gate_inp.bias': (d.experts,),
            b + 'ffn_gate_exps.weight': (d.experts, d.ff, d.dim), b + 'ffn_gate_exps.bias': (d.experts, d.ff),
            b + 'ffn_up_exps.weight': (d.experts, d.ff, d.dim), b + 'ffn_up_exps.bias': (d.experts, d.ff),
            b + 'ffn_down_exps.weight': (d.experts, d.dim, d.ff), b + 'ffn_down_exps.bias': (d.experts, d.dim),
        })
    return shapes
