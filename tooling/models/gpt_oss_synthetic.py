#!/usr/bin/env python3
"""Write a tiny random-weights gpt-oss GGUF: the architecture llama.cpp runs for gpt-oss-20b (attention
sinks, sliding-window layers alternating with full ones, 32 experts of which 4 route each token, their
weights in MXFP4 as in the published GGUFs, YaRN to 131,072 tokens) at small sizes, with Harmony's
tokenizer and chat template. It writes noise; it proves the loading, the chat format and the routing.

usage: gpt_oss_synthetic.py O200K_RANKS.js TEMPLATE.jinja OUT.gguf

Run through `npm run models:synthetic` (tooling/syntheticModels.ts), which finds numpy (Debian:
python3-numpy) and gguf-py (inside the llama.cpp source node-llama-cpp bundles) and caches the result.
"""
import sys
import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter
from gguf.quants import quantize
from gpt_oss import Dims, add_hparams, tensor_shapes
from harmony_vocab import add_harmony_tokenizer

ranks, template, out = sys.argv[1:4]
dims = Dims()
writer = GGUFWriter(out, 'gpt-oss')
add_hparams(writer, dims, 'gpt-oss-synthetic')
add_harmony_tokenizer(writer, ranks, template)

rng = np.random.default_rng(0)
for name, shape in tensor_shapes(dims).items():
    if name.endswith('norm.weight'):
        writer.add_tensor(name, np.ones(shape, np.float32))
    elif name.endswith('_exps.weight'):
        values = (rng.standard_normal(shape) * 0.05).astype(np.float32)
        writer.add_tensor(name, quantize(values, GGMLQuantizationType.MXFP4), raw_dtype=GGMLQuantizationType.MXFP4)
    elif len(shape) == 1 or name.endswith('.bias'):
        writer.add_tensor(name, (rng.standard_normal(shape) * 0.02).astype(np.float32))
    else:
        writer.add_tensor(name, (rng.standard_normal(shape) * 0.02).astype(np.float16))
writer.write_header_to_file()
writer.write_kv_data_to_file()
writer.write_tensors_to_file()
writer.close()
