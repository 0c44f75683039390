"""Plain-PyTorch BERT encoder shared by the fixture scripts and the PyTorch bench competitor.

Written from the Hugging Face BertModel definition; needs only torch, tokenizers and safetensors
(not transformers). Reads a Hugging Face BERT-family checkpoint folder (`config.json`,
`model.safetensors` with HF names and no `bert.` prefix, weights stored [out, in], `tokenizer.json`).

Eval-mode semantics (no dropout anywhere), absolute position embeddings, token type 0 everywhere,
exact-erf GELU, post-LayerNorm blocks. Attention is an explicit softmax over
(q k^T) / sqrt(head_size) with padded keys masked to -inf (`attention="explicit"`, the default
and what the fixtures use), or `torch.nn.functional.scaled_dot_product_attention` with the same
scale and mask (`attention="sdpa"`: same math, different kernel and rounding; bench only).

The parameters are plain tensors in `Bert.w` keyed by their HF names. `set_trainable` makes them
autograd leaves (so a scalar built from `forward` can be backpropagated); the word-embedding
lookup is an index into the full table, so its gradient is the usual dense table whose only
non-zero rows are the ids that occur.

Used by: scripts/make_encoder_fixture.py, scripts/make_gradnorm_fixture.py,
Benchmarks/torch_record_bench.py. Versions: torch 2.13.0+cpu, tokenizers 0.23.3, safetensors 0.8.0.
"""

import json
import math
import os

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from tokenizers import Tokenizer

POSITION_EMBEDDINGS = "embeddings.position_embeddings.weight"


def load_tokenizer(model_dir, max_length=512):
    """The model's own tokenizer.json with truncation to `max_length` and no padding."""
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    # tokenizer.json ships sentence-transformers' settings (truncate and pad to 128): replace them.
    tok.no_padding()
    tok.enable_truncation(max_length=max_length)
    return tok


class Bert:
    """BERT forward pass reading Hugging Face names (no `bert.` prefix), weights stored [out, in]."""

    def __init__(self, model_dir=None, dtype=torch.float32, config=None, weights=None):
        if config is None:
            with open(os.path.join(model_dir, "config.json")) as f:
                config = json.load(f)
        cfg = config
        assert cfg.get("hidden_act", "gelu") == "gelu", cfg.get("hidden_act")
        assert cfg.get("position_embedding_type", "absolute") == "absolute"
        self.config = cfg
        self.hidden = cfg["hidden_size"]
        self.layers = cfg["num_hidden_layers"]
        self.heads = cfg["num_attention_heads"]
        self.head_size = self.hidden // self.heads
        self.eps = float(cfg["layer_norm_eps"])
        self.max_pos = cfg["max_position_embeddings"]
        if weights is None:
            weights = load_file(os.path.join(model_dir, "model.safetensors"))
        # Parameters only: drop what is not embeddings or encoder (an unused pooler) and
        # non-float buffers (`embeddings.position_ids`, which is just arange(512)).
        self.w = {k: v.detach().to(dtype).clone() for k, v in weights.items()
                  if (k.startswith("embeddings.") or k.startswith("encoder."))
                  and v.is_floating_point()}
        self.dtype = dtype

    def to_dtype(self, dtype):
        """An independent copy with every parameter cast to `dtype` (no gradients attached)."""
        return Bert(config=self.config, weights=self.w, dtype=dtype)

    def names(self):
        return list(self.w.keys())

    def p(self, name):
        return self.w[name]

    def set_trainable(self, frozen=(POSITION_EMBEDDINGS,)):
        """requires_grad on every parameter except those named in `frozen`."""
        for k, v in self.w.items():
            v.requires_grad_(k not in frozen)
            v.grad = None

    def zero_grad(self):
        """Drops all gradients (the `set_to_none=True` behaviour)."""
        for v in self.w.values():
            v.grad = None

    def linear(self, x, prefix):
        # x (B, T, in) . W^T (in, out) + b (out)
        return F.linear(x, self.p(prefix + ".weight"), self.p(prefix + ".bias"))

    def layer_norm(self, x, prefix):
        return F.layer_norm(x, (self.hidden,), self.p(prefix + ".weight"), self.p(prefix + ".bias"),
                            self.eps)

    def forward(self, ids, mask=None, attention="explicit"):
        """ids (B, T) int64; mask (B, T) bool (True = real token) or None when every token is real.
        Returns (embedding-layer output, last-layer output), each (B, T, C)."""
        B, T = ids.shape
        assert T <= self.max_pos
        pos = torch.arange(T).unsqueeze(0).expand(B, T)
        tok_type = torch.zeros_like(ids)
        x = (self.p("embeddings.word_embeddings.weight")[ids]
             + self.p(POSITION_EMBEDDINGS)[pos]
             + self.p("embeddings.token_type_embeddings.weight")[tok_type])
        x = self.layer_norm(x, "embeddings.LayerNorm")
        emb_out = x
        # Key padding mask: padded keys get -inf before the softmax, so they get zero weight.
        # Every row has at least [CLS] real, so no row is all -inf.
        key_bias = None
        if mask is not None:
            key_bias = torch.zeros(B, 1, 1, T, dtype=x.dtype)
            key_bias = key_bias.masked_fill(~mask[:, None, None, :], float("-inf"))
        scale = 1.0 / math.sqrt(self.head_size)
        for l in range(self.layers):
            pre = f"encoder.layer.{l}."

            def split(t):  # (B, T, C) -> (B, H, T, hs)
                return t.view(B, T, self.heads, self.head_size).transpose(1, 2)

            q = split(self.linear(x, pre + "attention.self.query"))
            k = split(self.linear(x, pre + "attention.self.key"))
            v = split(self.linear(x, pre + "attention.self.value"))
            if attention == "sdpa":
                ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=key_bias, dropout_p=0.0,
                                                     scale=scale)
            else:
                scores = (q @ k.transpose(-1, -2)) * scale  # (B, H, T, T)
                if key_bias is not None:
                    scores = scores + key_bias
                att = torch.softmax(scores, dim=-1)
                ctx = att @ v
            ctx = ctx.transpose(1, 2).reshape(B, T, self.hidden)  # (B, T, C)
            a = self.linear(ctx, pre + "attention.output.dense")
            x = self.layer_norm(a + x, pre + "attention.output.LayerNorm")
            h = F.gelu(self.linear(x, pre + "intermediate.dense"), approximate="none")
            o = self.linear(h, pre + "output.dense")
            x = self.layer_norm(o + x, pre + "output.LayerNorm")
        return emb_out, x

    def embed(self, id_lists):
        """Pads a batch to its longest sequence and runs it (no gradients). Returns (normalised
        embeddings (B, C), pre-normalisation norms (B,), embedding-layer outputs, last-layer
        outputs)."""
        ids, mask = pad_batch(id_lists)
        with torch.no_grad():
            emb_out, last = self.forward(ids, mask)
            pooled = mean_pool(last, mask)
            norms = pooled.norm(dim=-1)
            normed = pooled / norms.clamp_min(1e-12).unsqueeze(-1)
        return normed, norms, emb_out, last


def pad_batch(id_lists):
    """Token id lists padded with [PAD] = 0 to the longest: ((B, T) int64 ids, (B, T) bool mask,
    True = real token)."""
    T = max(len(s) for s in id_lists)
    ids = torch.zeros(len(id_lists), T, dtype=torch.int64)
    mask = torch.zeros(len(id_lists), T, dtype=torch.bool)
    for i, s in enumerate(id_lists):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.int64)
        mask[i, : len(s)] = True
    return ids, mask


def mean_pool(last, mask=None):
    """Mean of the last-layer token states over the real tokens: (B, T, C) -> (B, C)
    (sentence-transformers' Pooling, pooling_mode_mean_tokens)."""
    if mask is None:
        return last.mean(dim=1)
    m = mask.unsqueeze(-1).to(last.dtype)
    return (last * m).sum(dim=1) / m.sum(dim=1)


def l2_normalize(x):
    """x / max(||x||, 1e-12) along the last axis (sentence-transformers' Normalize,
    i.e. torch.nn.functional.normalize)."""
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def info_nce(query, candidates, temperature):
    """InfoNCE with cosine scores, target = candidate 0 (the positive).
    query (C,), candidates (1 + n, C): pooled, unnormalised embeddings.
    Returns (loss, scores) with scores_j = cos(query, candidate_j) / temperature and
    loss = -log softmax(scores)_0 = logsumexp(scores) - scores_0."""
    q = l2_normalize(query)
    c = l2_normalize(candidates)
    scores = (c @ q) / temperature
    loss = F.cross_entropy(scores.unsqueeze(0), torch.zeros(1, dtype=torch.int64))
    return loss, scores


def grad_norms(bert, exclude=(POSITION_EMBEDDINGS,)):
    """(global L2 norm, {name: per-tensor L2 norm}) of the gradients of every parameter not in
    `exclude`; a parameter without a gradient counts as zero. Accumulated in float64."""
    per = {}
    total = 0.0
    for k, v in bert.w.items():
        if k in exclude:
            continue
        n = 0.0 if v.grad is None else float(torch.linalg.vector_norm(v.grad.to(torch.float64)))
        per[k] = n
        total += n * n
    return math.sqrt(total), per
