"""Harmony's tokenizer (o200k_harmony) and chat template, written into a GGUF as gpt-oss carries them.

o200k_harmony is o200k_base's byte-level BPE (its 199,998 ranks, read from js-tiktoken's
`ranks/o200k_base.js`) plus Harmony's special tokens at 199,998…201,087. llama.cpp wants the
ranks as GPT-2 style tokens and merges, derived here as its converter does for tiktoken models
(conversion/qwen.py: each token's merge is the BPE of its bytes stopped below its own rank).
"""
import json

# The named special tokens of o200k_harmony; every other id from 199,998 up is <|reserved_N|>.
SPECIAL = {
    199998: '<|startoftext|>', 199999: '<|endoftext|>', 200002: '<|return|>', 200003: '<|constrain|>',
    200005: '<|channel|>', 200006: '<|start|>', 200007: '<|end|>', 200008: '<|message|>',
    200012: '<|call|>', 200018: '<|endofprompt|>',
}
FIRST_SPECIAL = 199998
VOCAB_SIZE = 201088
TOKEN_TYPE_NORMAL, TOKEN_TYPE_CONTROL = 1, 3


def read_ranks(path):
    """o200k_base's ranks from js-tiktoken's module: lines of `prefix offset base64…`."""
    import base64
    text = open(path, encoding='utf-8').read()
    data = json.loads(text[text.index('{'):text.rindex('}') + 1])
    ranks = {}
    for line in data['bpe_ranks'].split('\n'):
        if not line:
            continue
        _, offset, *tokens = line.split(' ')
        for i, token in enumerate(tokens):
            ranks[base64.b64decode(token)] = int(offset) + i
    return ranks


def byte_encoder():
    """GPT-2's printable stand-in for each byte (what byte-level BPE vocabularies store)."""
    printable = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) + list(range(ord('®'), ord('ÿ') + 1))
    codes, extra = printable[:], 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, codes)}


def _bpe_pair(ranks, token, max_rank):
    parts = [bytes([b]) for b in token]
    while True:
        best, best_rank = None, None
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and (best_rank is None or rank < best_rank):
                best, best_rank = i, rank
        if best_rank is None or best_rank >= max_rank:
            return parts
        parts = parts[:best] + [parts[best] + parts[best + 1]] + parts[best + 2:]


def harmony_vocab(ranks_path):
    """(tokens, types, merges) of o200k_harmony, in llama.cpp's GPT-2 style."""
    ranks = read_ranks(ranks_path)
    assert len(ranks) == FIRST_SPECIAL, len(ranks)
    encoder = byte_encoder()
    as_text = lambda b: ''.join(encoder[x] for x in b)
    by_rank = sorted(ranks.items(), key=lambda item: item[1])
    tokens = [as_text(token) for token, _ in by_rank]
    merges = []
    for token, rank in by_rank:
        if len(token) > 1:
            pair = _bpe_pair(ranks, token, rank)
            assert len(pair) == 2, (token, pair)
            merges.append(f'{as_text(pair[0])} {as_text(pair[1])}')
    tokens += [SPECIAL.get(i, f'<|reserved_{i}|>') for i in range(FIRST_SPECIAL, VOCAB_SIZE)]
    types = [TOKEN_TYPE_NORMAL] * FIRST_SPECIAL + [TOKEN_TYPE_CONTROL] * (VOCAB_SIZE - FIRST_SPECIAL)
    return tokens, types, merges


def add_harmony_tokenizer(writer, ranks_path, template_path):
    """The tokenizer keys gpt-oss's GGUFs carry: o200k_harmony, no BOS added, <|return|> ends a reply."""
    tokens, types, merges = harmony_vocab(ranks_path)
    writer.add_tokenizer_model('gpt2')
    writer.add_tokenizer_pre('gpt-4o')
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(199998)
    writer.add_eos_token_id(200002)
    writer.add_pad_token_id(199999)
    writer.add_add_bos_token(False)
    writer.add_chat_template(open(template_path, encoding='utf-8').read())
    return tokens
