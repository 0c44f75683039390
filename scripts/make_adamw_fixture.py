#!/usr/bin/env python3
"""Write the PyTorch parity fixture for one unsupervised-update step (AdamW) on the real model.

Output: Tests/GradNormIRTests/Fixtures/update_step_parity.json (about 30 KB)

    {"model", "torch", "definition", "documents": [text, ...], "ids": [[int, ...], ...],
     "temperature", "lr", "betas", "eps", "weight_decay", "max_grad_norm",
     "loss", "loss_f64", "grad_norm", "grad_norm_f64",
     "delta_norms": {HF name: ||theta_after - theta_before||_2},
     "slices": [{"tensor", "index", "before", "after", "grad_f64"}, ...],
     "optimizer_only": {...}}

The step (METHOD.md, "Update strategies"): B = 4 documents, each tokenised alone by the model's
tokenizer.json (truncation 128, no padding). The query of document i is [CLS] + a random
contiguous crop of r_i of its content tokens + [SEP] (r_i uniform in [0.1, 0.5], length
max(1, int(n * r_i)), start uniform; Python's random with a fixed seed). ids = the B queries, then
the B documents: the 2B sequences exactly as the Swift test feeds them to the engine. They are run
in one padded batch with a key mask through the plain-PyTorch BERT of torch_bert.py in float32,
eval mode (no dropout); embeddings = masked mean pooling, L2-normalised. Loss = in-batch InfoNCE:
z_ij = cos(q_i, p_j) / tau, loss = mean_i cross_entropy(z_i, i) (tau = 0.05). Every parameter is
trained, the position embeddings too. Backward; torch.nn.utils.clip_grad_norm_(all parameters,
max_grad_norm) (its returned norm is "grad_norm"); one torch.optim.AdamW step over ONE parameter
group (weight decay on every tensor, biases and LayerNorms included) with the recorded lr, betas,
eps and weight decay (foreach=False: the single-tensor code path).

Stored:
- loss, grad_norm: the float32 run; loss_f64, grad_norm_f64: the same forward/backward with every
  parameter and activation in float64 (the exact values up to ~1e-12).
- delta_norms: per-tensor L2 norm of (theta_after - theta_before), float64 accumulation, for all
  101 trained tensors.
- slices: 16 consecutive values of a tensor at "index" ([row, col_start] for 2-D, stored [out, in];
  [start] for 1-D): parameters before and after the step (float32), and the float64 gradient before
  clipping (so a test can tell the elements whose gradient sign is decided by rounding: on the first
  AdamW step an element moves by about lr * sign(g), so where |g| is at float32 noise level the
  direction of the step is arbitrary in any float32 implementation; the attention key biases have
  zero gradient in exact arithmetic and are all such elements).
  Tensors: word-embedding rows of two used tokens and one unused row (zero gradient: only the
  weight decay acts), position and token-type embeddings, query/key/value weights and the key bias
  of layer 2, the FFN weights and bias of layer 4, LayerNorm weights and biases.
- optimizer_only: the optimizer alone: two random float32 tensors (64 and 3 x 16 values, some
  gradients exactly zero), three AdamW steps with learning rates [1e-3, 5e-4, 2e-3], weight decay
  0.1, the gradients of each step and the parameters after each step.

Floats are written with 9 significant digits (float32 round-trips exactly). Reruns give the same
file (fixed seeds, torch.use_deterministic_algorithms(True), same torch build).
Needs torch, tokenizers, safetensors and scripts/torch_bert.py.

Usage (from the package root, after `make setup`):
    python3 scripts/make_adamw_fixture.py [--model models/all-MiniLM-L6-v2] [--out PATH]
Versions used for the committed file: torch 2.13.0+cpu, tokenizers 0.23.3, safetensors 0.8.0.
"""

import argparse
import json
import math
import os
import random
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_bert import Bert, l2_normalize, load_tokenizer, mean_pool  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL = os.path.join(ROOT, "models", "all-MiniLM-L6-v2")
DEFAULT_OUT = os.path.join(ROOT, "Tests", "GradNormIRTests", "Fixtures", "update_step_parity.json")
SEED = 20261127
TAU = 0.05
LR = 1e-4
BETAS = (0.9, 0.999)
EPS = 1e-8
WEIGHT_DECAY = 0.01
MAX_GRAD_NORM = 1.0
MAX_LENGTH = 128

DOCUMENTS = [
    "The kernel scheduler decides which runnable process gets the processor next; a time slice "
    "that expires puts the process back at the end of its priority queue.",
    "A hash table maps keys to buckets with a hash function. Collisions are resolved by chaining "
    "or by open addressing, and the table is resized when its load factor grows too large.",
    "Photosynthesis in green plants turns light, water and carbon dioxide into glucose and oxygen, "
    "in the chloroplasts of the leaf cells.",
    "To reverse a list in Python, call its reverse() method, which works in place, or use the "
    "slice [::-1] or reversed() to get a new sequence without changing the original.",
]

SLICES = [
    # (tensor, index); word-embedding rows are filled in below.
    ("embeddings.position_embeddings.weight", [3, 0]),
    ("embeddings.token_type_embeddings.weight", [0, 100]),
    ("embeddings.LayerNorm.weight", [50]),
    ("embeddings.LayerNorm.bias", [200]),
    ("encoder.layer.2.attention.self.query.weight", [5, 0]),
    ("encoder.layer.2.attention.self.key.weight", [77, 300]),
    ("encoder.layer.2.attention.self.value.weight", [383, 368]),
    ("encoder.layer.2.attention.self.key.bias", [0]),
    ("encoder.layer.2.attention.self.value.bias", [100]),
    ("encoder.layer.3.attention.output.dense.weight", [10, 20]),
    ("encoder.layer.3.attention.output.LayerNorm.weight", [0]),
    ("encoder.layer.4.intermediate.dense.weight", [1000, 40]),
    ("encoder.layer.4.intermediate.dense.bias", [700]),
    ("encoder.layer.4.output.dense.weight", [300, 1500]),
    ("encoder.layer.5.output.LayerNorm.bias", [368]),
]
WIDTH = 16


def r9(x):
    return float(f"{x:.9g}")


def crop_batch(tok):
    rng = random.Random(SEED)
    docs = [tok.encode(t).ids for t in DOCUMENTS]
    queries = []
    for ids in docs:
        content = ids[1:-1]
        n = len(content)
        r = rng.uniform(0.1, 0.5)
        length = max(1, int(n * r))
        start = rng.randint(0, n - length)
        queries.append([ids[0]] + content[start:start + length] + [ids[-1]])
    return queries + docs


def in_batch_loss(bert, seqs):
    B = len(seqs) // 2
    T = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), T, dtype=torch.int64)
    mask = torch.zeros(len(seqs), T, dtype=torch.bool)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = True
    _, last = bert.forward(ids, mask)
    e = mean_pool(last, mask)
    u = l2_normalize(e)
    z = (u[:B] @ u[B:].T) / TAU
    return F.cross_entropy(z, torch.arange(B))


def optimizer_only():
    g = torch.Generator().manual_seed(SEED)
    shapes = [[64], [3, 16]]
    params = [(torch.rand(s, generator=g) * 2 - 1).requires_grad_(True) for s in shapes]
    before = [p.detach().clone() for p in params]
    lrs = [1e-3, 5e-4, 2e-3]
    opt = torch.optim.AdamW(params, lr=lrs[0], betas=BETAS, eps=EPS, weight_decay=0.1, foreach=False)
    steps = []
    for k, lr in enumerate(lrs):
        for group in opt.param_groups:
            group["lr"] = lr
        grads = []
        for p in params:
            gr = (torch.rand(p.shape, generator=g) * 2 - 1) * 10.0 ** float(k - 3)
            flat = gr.view(-1)
            flat[:8] = 0.0                       # always zero: only the decay acts
            if k == 1:
                flat[8:16] = 0.0                 # zero on one step only
            p.grad = gr
            grads.append([r9(v) for v in gr.view(-1).tolist()])
        opt.step()
        steps.append({"lr": lr, "grads": grads,
                      "after": [[r9(v) for v in p.detach().view(-1).tolist()] for p in params]})
    return {"shapes": shapes, "betas": list(BETAS), "eps": EPS, "weight_decay": 0.1,
            "before": [[r9(v) for v in b.view(-1).tolist()] for b in before], "steps": steps}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(SEED)

    tok = load_tokenizer(args.model, MAX_LENGTH)
    seqs = crop_batch(tok)
    used = sorted({i for s in seqs for i in s})

    bert = Bert(args.model, dtype=torch.float32)
    bert64 = bert.to_dtype(torch.float64)
    bert64.set_trainable(frozen=())
    loss64 = in_batch_loss(bert64, seqs)
    loss64.backward()
    grad64 = {k: v.grad for k, v in bert64.w.items()}
    norm64 = math.sqrt(sum(float((g * g).sum()) for g in grad64.values()))

    bert.set_trainable(frozen=())
    names = bert.names()
    params = [bert.w[k] for k in names]
    before = {k: v.detach().clone() for k, v in bert.w.items()}
    loss = in_batch_loss(bert, seqs)
    loss.backward()
    norm = float(torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM))
    opt = torch.optim.AdamW(params, lr=LR, betas=BETAS, eps=EPS, weight_decay=WEIGHT_DECAY, foreach=False)
    opt.step()

    unused = next(i for i in range(2000, 30000) if i not in used)
    slices = [("embeddings.word_embeddings.weight", [seqs[0][1], 0]),
              ("embeddings.word_embeddings.weight", [seqs[-1][2], 32]),
              ("embeddings.word_embeddings.weight", [unused, 0])] + SLICES
    out_slices = []
    for name, index in slices:
        def cut(t):
            t = t.detach()
            if len(index) == 2:
                return t[index[0], index[1]:index[1] + WIDTH]
            return t[index[0]:index[0] + WIDTH]
        out_slices.append({"tensor": name, "index": index,
                           "before": [r9(v) for v in cut(before[name]).tolist()],
                           "after": [r9(v) for v in cut(bert.w[name]).tolist()],
                           "grad_f64": [float(f"{v:.12g}") for v in cut(grad64[name]).tolist()]})
    delta = {k: float(torch.linalg.vector_norm((bert.w[k].detach() - before[k]).to(torch.float64)))
             for k in names}

    fixture = {
        "model": os.path.basename(os.path.normpath(args.model)),
        "torch": torch.__version__,
        "definition": "one unsupervised-update step: in-batch InfoNCE over (crop, document) pairs, "
                      "clip_grad_norm_, torch.optim.AdamW (one group); see scripts/make_adamw_fixture.py",
        "documents": DOCUMENTS,
        "ids": seqs,
        "unused_row": unused,
        "temperature": TAU, "lr": LR, "betas": list(BETAS), "eps": EPS,
        "weight_decay": WEIGHT_DECAY, "max_grad_norm": MAX_GRAD_NORM,
        "loss": r9(float(loss.detach())), "loss_f64": float(loss64.detach()), "grad_norm": r9(norm), "grad_norm_f64": norm64,
        "delta_norms": {k: float(f"{v:.12g}") for k, v in delta.items()},
        "slices": out_slices,
        "optimizer_only": optimizer_only(),
    }
    with open(args.out, "w") as f:
        json.dump(fixture, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {args.out}: loss {float(loss):.6f} (f64 {float(loss64):.6f}), grad norm {norm:.6f} "
          f"(f64 {norm64:.6f}), {len(seqs)} sequences of {[len(s) for s in seqs]} tokens")


if __name__ == "__main__":
    main()
