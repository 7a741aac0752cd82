"""The output matrix of a scripted model: a linear classifier from the state the residual stream holds at a
step of the script (its RMS-normalized vector) to the token the script writes next.
"""
import numpy as np
from gpt_oss import tensor_shapes


def rms_normalized(x):
    """What output_norm hands the output matrix (its weight is all ones)."""
    return x * np.sqrt(len(x)) / np.linalg.norm(x)


def solve_readout(inputs, next_tokens, margin):
    """Output rows for the tokens the script writes, such that at every state (a row of `inputs`, already
    normalized) its next token wins by `margin` logits over every other written token and over the ~200k
    tokens whose rows stay zero (squared hinge loss, plain gradient descent). Returns (tokens, rows)."""
    dim = inputs.shape[1]
    targets = sorted(set(next_tokens))
    row = {t: i for i, t in enumerate(targets)}
    x = np.asarray(inputs, dtype=np.float64)
    y = np.array([row[t] for t in next_tokens])
    unit = x / np.sqrt(dim)
    w = np.zeros((len(targets), dim))
    picked = np.eye(len(targets), dtype=bool)[y]
    for _ in range(20000):
        z = unit @ w.T
        right = z[picked]
        gap = np.where(picked, 0, np.maximum(0, 1 - (right[:, None] - z)))  # versus every other row
        floor = np.maximum(0, 1 - right)  # versus the zero rows
        if not gap.any() and not floor.any():
            break
        grad_z = 2 * gap
        grad_z[picked] -= 2 * gap.sum(axis=1) + 2 * floor
        w -= 0.05 * grad_z.T @ unit / len(y)
    z = x @ (w / np.sqrt(dim)).T
    right = z[picked]
    others = np.maximum(np.where(picked, -np.inf, z).max(axis=1), 0)
    worst = (right - others).min()
    assert worst > 0.1, f'the script is not separable (margin {worst})'
    return targets, w / np.sqrt(dim) * (margin / worst)


def script_readout(table, slot, dim, margin):
    """solve_readout over a script's steps, (current token, features, next token): the state at a step is the
    token's one-hot in its slot plus a one in each feature dimension, RMS-normalized."""
    inputs = []
    for token, features, _ in table:
        x = np.zeros(dim)
        x[slot[token]] = 1.0
        x[list(features)] = 1.0
        inputs.append(rms_normalized(x))
    return solve_readout(np.array(inputs), [nxt for _, _, nxt in table], margin)


def scripted_tensors(dims, slot, targets, rows):
    """A scripted model's tensors before its layers are set: each used token embedded as a one-hot in its
    slot, the readout rows for the tokens the script writes, every norm weight one, all else zero."""
    tensors = {name: np.zeros(shape, np.float32) for name, shape in tensor_shapes(dims).items()}
    for token, i in slot.items():
        tensors['token_embd.weight'][token, i] = 1.0
    for i, token in enumerate(targets):
        tensors['output.weight'][token] = rows[i]
    for name in tensors:
        if name.endswith('norm.weight'):
            tensors[name][:] = 1.0
    return tensors
