#!/usr/bin/env python3
"""Write the PyTorch parity fixture for the BERT encoder (forward pass, no gradients).

Output: Tests/GradNormIRTests/Fixtures/encoder_parity.json

    {"model": "all-MiniLM-L6-v2", "torch": "<version>", "max_length": 512,
     "padding_max_abs_diff": <float>,
     "records": [{"text", "ids", "embedding", "unnormalized_norm"}, ...],
     "hidden_slices": [{"record", "text", "tokens", "dims", "embedding_layer", "last_layer"}, ...]}

- ids: WordPiece ids from the model's own tokenizer.json, with [CLS]/[SEP], truncated to 512.
- embedding: mean of the last-layer token states over the real tokens, L2-normalised (384 floats).
- unnormalized_norm: the L2 norm of that mean-pooled vector before normalisation.
- hidden_slices: for a few records, the first `tokens` x `dims` block of the embedding-layer output
  (after its LayerNorm) and of the last encoder layer's output, row-major [token][dim].
- padding_max_abs_diff: max |difference| between each record's embedding computed alone (no
  padding) and in its padded, masked, mixed-length batch. The script fails if it exceeds 1e-5.

The encoder is the plain-PyTorch BERT of scripts/torch_bert.py in eval mode (no dropout), written
from the Hugging Face BertModel definition; it needs only torch, tokenizers and safetensors (not
transformers). Floats
are computed in float32 and rounded to 8 significant digits in the file. Texts are fixed in this
file or drawn from a fixed word list with a fixed seed, so reruns give the same file.

Usage (from the package root, after `make setup`):
    python3 scripts/make_encoder_fixture.py [--model models/all-MiniLM-L6-v2] [--out PATH]
Versions used for the committed file: torch 2.13.0+cpu, tokenizers 0.23.3, safetensors 0.8.0.
"""

import argparse
import json
import os
import random
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_bert import Bert, load_tokenizer  # noqa: E402  (scripts/torch_bert.py)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL = os.path.join(ROOT, "models", "all-MiniLM-L6-v2")
DEFAULT_OUT = os.path.join(ROOT, "Tests", "GradNormIRTests", "Fixtures", "encoder_parity.json")
MAX_LENGTH = 512
SEED = 20250701
BATCH_SIZE = 8
SIG_DIGITS = 8
SLICE_TOKENS, SLICE_DIMS = 4, 8

# Reference values from the project's DATA.md notes
# (PyTorch 2.13 CPU, eval mode, masked mean pooling, L2-normalised).
REF_HELLO = "hello world"
REF_FOX = "The quick brown fox jumps over the lazy dog."
REF_HELLO_IDS = [101, 7592, 2088, 102]
REF_FOX_IDS = [101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 1012, 102]
REF_HELLO_EMB6 = [-0.034477, 0.031023, 0.006735, 0.026109, -0.039362, -0.160303]
REF_COS = 0.108609
REF_TOL = 2e-6  # the references are printed to 6 decimals


# ----------------------------------------------------------------------------------------------
# Texts
# ----------------------------------------------------------------------------------------------

# Common English words; only those that are a single WordPiece token are used, so a sequence of
# n of them is exactly n tokens (used to hit the 510/511/512 boundaries exactly).
WORDS = """
the of and to in is was for on that with as by at from his it an were are which this be or has
had not first one their its new after but who they have her she two been other when there all
during into school time may years more most only over city some world would where later up such
used many can state about national out known university united then made year between through
film three series team while both under government part american well system four also because
before high each these work so group number people house name water music game play book light
small large long early life land
area war page song club river north south east west black white red green blue old young good
great best last second third main major public local death church king party power line side
back road field home family father mother son daughter child children man woman men women
""".split()

SENTENCES = [
    "What is the capital of France?",
    "How do I reverse a linked list in place?",
    "Dense retrievers map queries and documents into one vector space.",
    "A gradient norm can tell how surprising a document is to a trained model.",
    "The mitochondria is the powerhouse of the cell.",
    "Why does my Python script raise a KeyError when the key exists?",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "The stock market fell sharply after the interest rate announcement.",
    "She sells sea shells by the sea shore.",
    "In 1969, Apollo 11 landed the first humans on the Moon.",
    "Is it safe to take ibuprofen with coffee?",
    "HELLO WORLD, THIS IS AN ALL-CAPS SENTENCE!!!",
]

PARAGRAPHS = [
    # Retrieval / IR.
    "Information retrieval is the task of finding material, usually documents, of an "
    "unstructured nature that satisfies an information need from within large collections. "
    "Classical systems rank documents with term statistics such as BM25, while dense "
    "retrievers encode queries and documents with a neural network and rank them by the inner "
    "product of their vectors. When new documents arrive from a domain the retriever never saw "
    "during training, its ranking quality can drop without any visible error.",
    # Science.
    "Water boils at 100 degrees Celsius at sea level, but the boiling point decreases as "
    "altitude increases because the atmospheric pressure is lower. At the summit of Mount "
    "Everest, water boils at roughly 70 degrees Celsius, which is why cooking food there takes "
    "much longer than it does near the coast.",
    # History / prose.
    "The printing press, developed by Johannes Gutenberg around 1440, made it possible to "
    "produce books quickly and cheaply. Within a few decades, presses had spread across Europe, "
    "literacy rose, and ideas travelled faster than ever before. Historians often link the "
    "press to the Reformation, the Scientific Revolution and the rise of modern newspapers.",
    # Legal-ish, long sentences, numbers.
    "Section 4.2(b): The Licensee shall, within thirty (30) days of receipt of written notice, "
    "remedy any breach of the obligations set out in Clauses 7 through 9; failing which the "
    "Licensor may terminate this Agreement with immediate effect, without prejudice to any "
    "rights or remedies accrued prior to the date of termination.",
    # Dictionary-style definition (like the project's Debian corpora).
    "A data structure in which each element points to the next, allowing constant-time "
    "insertion and removal at any known position but requiring linear time to find an element "
    "by index. Compare array, which offers constant-time indexing but costly insertion.",
]

CODE = [
    "func add(_ a: Int, _ b: Int) -> Int {\n    return a + b\n}",
    "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
    "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); return 0; }",
    "SELECT name, COUNT(*) FROM users WHERE created_at > '2024-01-01' GROUP BY name;",
    "cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);",
    "https://example.org/path/to/page?query=dense+retrieval&lang=en#section-2",
]

NON_ENGLISH = [
    "Le chat est assis sur le tapis, et il regarde la pluie tomber.",
    "Über den Wolken muss die Freiheit wohl grenzenlos sein.",
    "¿Dónde está la biblioteca? Necesito devolver un libro mañana.",
    "Café naïve résumé façade jalapeño Ångström",
    "北京是中华人民共和国的首都。",
    "東京は日本の首都です。今日はいい天気ですね。",
    "Москва — столица России.",
    "Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο.",
    "مرحبا بالعالم",
    "안녕하세요, 만나서 반갑습니다.",
    "नमस्ते दुनिया",
    "I love pizza 🍕 and coffee ☕!",
]

EDGE = [
    "",  # -> [CLS] [SEP]
    "   \t\n  ",  # whitespace only -> [CLS] [SEP]
    "a",
    "?",
    "42",
    "hello",
    "unbelievably",  # several word pieces
    "GradNormIR",
    "x" * 120,  # longer than the 100-char word limit -> [UNK]
    "don't stop-believing... (really) [ok] {fine} <tag> $5.99 50% #1 @user",
    "line one\nline two\r\nline three\ttabbed",
]


def build_texts(single_token_words):
    """All fixture texts, in a fixed order."""
    rng = random.Random(SEED)
    texts = [REF_HELLO, REF_FOX]
    texts += EDGE + SENTENCES + PARAGRAPHS + CODE + NON_ENGLISH

    # Random word sequences of exact token counts (each word is one token): short to the
    # 512-token boundary (510 words + [CLS] + [SEP] = 512: no truncation; 511: truncated by one).
    for n in (1, 7, 31, 64, 127, 200, 255, 256, 300, 400, 509, 510, 511, 700):
        texts.append(" ".join(rng.choice(single_token_words) for _ in range(n)))

    # Repeated text far beyond 512 tokens: truncation must keep the first 511 + [SEP].
    texts.append(" ".join([REF_HELLO] * 300))
    texts.append(" ".join(PARAGRAPHS[0] for _ in range(6)))
    texts.append("\n\n".join(CODE * 8))
    texts.append(" ".join(NON_ENGLISH * 10))
    # A shuffled mix of the sentences, paragraphs and code above (about 680 tokens before truncation).
    pool = SENTENCES + PARAGRAPHS + CODE
    texts.append(" ".join(rng.sample(pool, len(pool))))
    return texts


# ----------------------------------------------------------------------------------------------

def r8(x):
    """Round to SIG_DIGITS significant digits (as a JSON number)."""
    return float(f"{float(x):.{SIG_DIGITS}g}")


def tokenizer_for(model_dir):
    # The model's tokenizer.json with truncation to 512 and its shipped padding removed.
    return load_tokenizer(model_dir, MAX_LENGTH)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=DEFAULT_MODEL, help="BERT checkpoint folder")
    ap.add_argument("--out", default=DEFAULT_OUT, help="fixture path to write")
    args = ap.parse_args()

    torch.manual_seed(SEED)
    tok = tokenizer_for(args.model)
    bert = Bert(args.model)

    def ids_of(text):
        return tok.encode(text).ids

    # --- reference check against docs/DATA.md ---
    assert ids_of(REF_HELLO) == REF_HELLO_IDS, ids_of(REF_HELLO)
    assert ids_of(REF_FOX) == REF_FOX_IDS, ids_of(REF_FOX)
    ref, _, _, _ = bert.embed([REF_HELLO_IDS, REF_FOX_IDS])  # padded batch of 2
    emb6 = ref[0, :6].tolist()
    cos = float(ref[0] @ ref[1])
    d_emb = max(abs(a - b) for a, b in zip(emb6, REF_HELLO_EMB6))
    d_cos = abs(cos - REF_COS)
    print(f"reference: ids(hello world) = {REF_HELLO_IDS} ok; ids(fox) ok ({len(REF_FOX_IDS)} ids)")
    print("reference: emb(hello world)[:6] =", " ".join(f"{v:.6f}" for v in emb6),
          f"(max |diff| {d_emb:.2e})")
    print(f"reference: cos(hello, fox) = {cos:.6f} (|diff| {d_cos:.2e})")
    assert d_emb < REF_TOL, f"emb(hello world)[:6] differs from DATA.md by {d_emb}"
    assert d_cos < REF_TOL, f"cos differs from DATA.md by {d_cos}"

    # --- texts and ids ---
    single = [w for w in dict.fromkeys(WORDS) if len(ids_of(w)) == 3]
    assert len(single) >= 100, len(single)
    texts = build_texts(single)
    assert len(texts) == len(set(texts)), "duplicate fixture texts"
    ids = [ids_of(t) for t in texts]
    assert ids[texts.index("")] == [101, 102]
    full = [len(tok.encode(t, add_special_tokens=False).ids) + 2 for t in texts]  # before truncation
    n_trunc = sum(1 for n in full if n > MAX_LENGTH)
    lengths = sorted(len(s) for s in ids)
    print(f"texts: {len(texts)}, tokens per text {lengths[0]}..{lengths[-1]}, "
          f"{n_trunc} truncated to {MAX_LENGTH}")

    # --- padded, masked batches of mixed lengths (seeded shuffle) ---
    order = list(range(len(texts)))
    random.Random(SEED + 1).shuffle(order)
    emb = [None] * len(texts)
    norm = [None] * len(texts)
    states = {}
    for b in range(0, len(order), BATCH_SIZE):
        idx = order[b : b + BATCH_SIZE]
        e, n, eo, last = bert.embed([ids[i] for i in idx])
        for j, i in enumerate(idx):
            emb[i], norm[i] = e[j], float(n[j])
            states[i] = (eo[j], last[j])

    # --- padding check: each text alone (no padding) must match its padded batch ---
    pad_diff = 0.0
    for i in range(len(texts)):
        e, _, _, _ = bert.embed([ids[i]])
        pad_diff = max(pad_diff, float((e[0] - emb[i]).abs().max()))
    print(f"padding: max |alone - padded batch| over all embeddings = {pad_diff:.2e}")
    assert pad_diff < 1e-5, pad_diff

    # --- hidden slices for three texts (short, medium, truncated) ---
    slice_texts = [REF_HELLO, REF_FOX, " ".join([REF_HELLO] * 300)]
    hidden = []
    for t in slice_texts:
        i = texts.index(t)
        eo, last = states[i]
        hidden.append({
            "record": i,
            "text": t,
            "tokens": SLICE_TOKENS,
            "dims": SLICE_DIMS,
            "embedding_layer": [[r8(v) for v in row] for row in eo[:SLICE_TOKENS, :SLICE_DIMS].tolist()],
            "last_layer": [[r8(v) for v in row] for row in last[:SLICE_TOKENS, :SLICE_DIMS].tolist()],
        })

    records = [{
        "text": t,
        "ids": s,
        "embedding": [r8(v) for v in emb[i].tolist()],
        "unnormalized_norm": r8(norm[i]),
    } for i, (t, s) in enumerate(zip(texts, ids))]

    fixture = {
        "model": "all-MiniLM-L6-v2",
        "torch": torch.__version__,
        "max_length": MAX_LENGTH,
        "padding_max_abs_diff": r8(pad_diff),
        "records": records,
        "hidden_slices": hidden,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(fixture, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    size = os.path.getsize(args.out)
    print(f"wrote {os.path.relpath(args.out, ROOT)}: {len(records)} records, "
          f"{len(hidden)} hidden slices, {size} bytes")
    assert size < 1_000_000, "fixture must stay under 1 MB"


if __name__ == "__main__":
    sys.exit(main())
