#!/usr/bin/env python3
"""Write the PyTorch parity fixture for the GradNormIR record gradient (loss, gradient norms).

Output: Tests/GradNormIRTests/Fixtures/gradnorm_parity.json

    {"model": "all-MiniLM-L6-v2", "torch": "<version>", "definition": "<text>",
     "excluded": ["embeddings.position_embeddings.weight"], "parameter_count": <int>,
     "fd_check": [{...}, ...],
     "records": [{"name", "query", "positive", "negatives", "ids", "lengths_before_truncation",
                  "temperature", "max_length", "scores", "loss", "grad_norm",
                  "loss_f64", "grad_norm_f64", "tensor_norms", "grad_slices"}, ...]}

A record (METHOD.md, "Per-document score", steps 4-5) is a query text d, a positive text x and n
negative texts (n = 4 except one record with 2). Each text is tokenised alone by the model's own
tokenizer.json ([CLS] ... [SEP], truncated to the record's max_length, no padding) and run alone
(no padding, so no mask) through one shared BERT encoder in eval mode (no dropout), float32.
Pooled embedding = mean of the last-layer token states over the sequence. Scores
s_j = cos(d, c_j) / temperature for c = [x, n_1, ..., n_n], with the cosine computed explicitly
as the dot product of the two pooled vectors each divided by max(||.||, 1e-12) (the model's
Normalize module; the cosine does not depend on it). Loss = cross-entropy with target 0 =
logsumexp(s) - s_0. The loss is backpropagated by autograd through all 2 + n sequences.
grad_norm = sqrt(sum over parameters of ||dL/dtheta||^2) over every encoder tensor except
embeddings.position_embeddings.weight (frozen; the checkpoint's unused pooler is not part of the
model, and embeddings.position_ids is a buffer): word embeddings (dense table gradient, non-zero
only on rows that occur), token type embeddings, every LayerNorm weight/bias, every linear
weight/bias (100 tensors, 22,368,768 values). Per-tensor norms are computed from the float32
gradients and accumulated in float64.

Per record:
- ids: one list per sequence in the order [query, positive, negative_1, ..., negative_n], after
  truncation; lengths_before_truncation: the same sequences' lengths without truncation.
- scores: s_j (1 + n floats); loss, grad_norm: float32 run as above.
- loss_f64, grad_norm_f64: the same record with every parameter and activation in float64, as a
  measure of the float32 rounding a re-implementation should expect. Records with a tiny loss are
  ill-conditioned in float32 (softmax_0 - 1 cancels): the record "easy" (loss about 1e-5) differs
  from its float64 value by about 2e-4 relative and between float32 code paths by about 1e-2.
- tensor_norms: {HF name: L2 norm of that tensor's gradient} for all 100 included tensors. The six
  attention key biases get zero gradient in exact arithmetic (a key bias adds the same q.b to every
  score of a softmax row); their stored norms (about 1e-7) are float32 rounding noise: compare
  them with an absolute tolerance, not a relative one.
- grad_slices: 8 consecutive gradient values of a few tensors: "index" is [row, col_start] for a
  2-D tensor ([out, in] as stored) or [start] for a 1-D tensor. The word-embedding slice is at the
  row of the query's first real token (ids[0][1]).

fd_check: central finite differences of the loss (float64 copy of the model, step h) for a few
parameter elements, compared with float64 and float32 autograd; the script fails if the float64
relative difference exceeds 1e-6.

Floats are rounded to 9 significant digits. Texts are literal or drawn with a fixed seed, and torch
runs with use_deterministic_algorithms(True), so reruns give the same file (same torch build).
Needs torch, tokenizers, safetensors (not transformers) and scripts/torch_bert.py.

Usage (from the package root, after `make setup`):
    python3 scripts/make_gradnorm_fixture.py [--model models/all-MiniLM-L6-v2] [--out PATH]
Versions used for the committed file: torch 2.13.0+cpu, tokenizers 0.23.3, safetensors 0.8.0.
"""

import argparse
import json
import math
import os
import random
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_bert import (POSITION_EMBEDDINGS, Bert, grad_norms, info_nce,  # noqa: E402
                        load_tokenizer, mean_pool)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL = os.path.join(ROOT, "models", "all-MiniLM-L6-v2")
DEFAULT_OUT = os.path.join(ROOT, "Tests", "GradNormIRTests", "Fixtures", "gradnorm_parity.json")
SEED = 20250702
SIG_DIGITS = 9
TAU = 0.05
MAX_LENGTH = 512

DEFINITION = (
    "Record (d, x, n_1..n_n): each text tokenised alone ([CLS] ... [SEP], truncated to max_length, "
    "no padding) and encoded alone by one shared BERT encoder in eval mode (no dropout), float32. "
    "p(t) = mean of the last-layer token states over all tokens of t. "
    "s_j = dot(p(d)/max(|p(d)|,1e-12), p(c_j)/max(|p(c_j)|,1e-12)) / temperature for "
    "c = [x, n_1..n_n] (cosine). loss = logsumexp(s) - s_0 (cross-entropy, target 0). "
    "grad_norm = sqrt(sum over tensors of |dloss/dW|^2) over every encoder tensor except "
    "embeddings.position_embeddings.weight (frozen) and the unused pooler: word embeddings "
    "(dense table gradient), token type embeddings, all LayerNorms, all linear weights and biases "
    "(100 tensors). Per-tensor norms in float64 from float32 gradients. Attention key biases "
    "have zero gradient in exact arithmetic: their tensor norms are rounding noise."
)

# Gradient slices: (tensor, row or None for 1-D, column start). Row None on a 2-D tensor is
# never used; the word-embedding row is filled in per record.
SLICES = [
    ("encoder.layer.0.attention.self.query.weight", 0, 0),
    ("encoder.layer.5.output.dense.weight", 3, 0),
    ("encoder.layer.2.intermediate.dense.bias", None, 0),
    ("encoder.layer.4.attention.output.LayerNorm.weight", None, 0),
    ("embeddings.LayerNorm.bias", None, 0),
    ("embeddings.token_type_embeddings.weight", 0, 0),
    ("embeddings.word_embeddings.weight", "query_token_1", 0),
]
SLICE_LEN = 8

# Reference values from DATA.md (checked before writing).
REF_HELLO = "hello world"
REF_FOX = "The quick brown fox jumps over the lazy dog."
REF_HELLO_EMB6 = [-0.034477, 0.031023, 0.006735, 0.026109, -0.039362, -0.160303]

# ----------------------------------------------------------------------------------------------
# Texts
# ----------------------------------------------------------------------------------------------

# Short texts (under 16 tokens) in topic groups, so that negatives are plausible (as GradNormIR's
# hard negatives are) and the losses are not vanishingly small.
SHORT = {
    "hash": [
        "What is a hash table?",
        "Hash maps find a value from its key in constant time.",
        "A binary search tree keeps its keys in sorted order.",
        "A linked list stores items in nodes that point onward.",
        "A hash function maps any data to a short number.",
        "An array stores elements next to each other in memory.",
    ],
    "sort": [
        "How do I sort a list in Python?",
        "Use the built-in sorted function or list.sort.",
        "Use reversed() to iterate over a list backwards.",
        "Python lists can hold items of different types.",
        "In JavaScript, arrays have a sort method too.",
        "Sorting algorithms include quicksort and merge sort.",
    ],
    "austen": [
        "Who wrote Pride and Prejudice?",
        "Jane Austen, an English novelist born in 1775.",
        "Charlotte Bronte wrote Jane Eyre in 1847.",
        "Pride and Prejudice is set in rural England.",
        "Emma is a novel about youthful hubris.",
        "Charles Dickens wrote Oliver Twist.",
    ],
    "planet": [
        "Which planet is closest to the sun?",
        "Mercury orbits nearest to the Sun.",
        "Venus is the hottest planet in the Solar System.",
        "Mars is called the Red Planet.",
        "The Sun is a yellow dwarf star.",
        "Jupiter is the largest planet.",
    ],
    "tcp": [
        "What does TCP stand for?",
        "Transmission Control Protocol, a reliable transport.",
        "UDP sends datagrams without a connection.",
        "IP stands for Internet Protocol.",
        "HTTP is the protocol of the web.",
        "TLS encrypts traffic between hosts.",
    ],
    "recursion": [
        "Define recursion.",
        "A function that calls itself on a smaller input.",
        "Iteration repeats a block of code in a loop.",
        "A stack overflow happens when calls nest too deep.",
        "Induction proves a statement for all natural numbers.",
        "A definition that refers to itself is circular.",
    ],
    "misc": [
        "The river flooded the old town last spring.",
        "Coffee contains caffeine, a mild stimulant.",
        "The recipe needs two eggs and a cup of flour.",
        "The train leaves at 6:45 from platform 9.",
        "Tea is grown on the hills of Darjeeling.",
        "Bananas are rich in potassium.",
        "The museum is closed on Mondays.",
        "How tall is Mount Everest?",
        "Everest rises 8,849 metres above sea level.",
        "The committee postponed its vote until June.",
        "What is the second highest mountain?",
        "Is coffee bad for your heart?",
    ],
}

# Medium paragraphs, about 60 to 128 tokens each, keyed by topic.
PARAGRAPHS = {
    "hash":
    "A hash table stores key-value pairs in an array of buckets. A hash function turns each key "
    "into a bucket index, so lookups, insertions and deletions take constant time on average. "
    "When two keys land in the same bucket, the table resolves the collision either by chaining "
    "entries in a list or by probing for another free slot. Performance degrades when the table "
    "becomes too full, so most implementations resize and rehash once the load factor passes a "
    "threshold.",
    "dict":
    "Python dictionaries are mutable mappings from keys to values. Keys must be hashable, which "
    "in practice means immutable: strings, numbers and tuples of immutable objects work, lists do "
    "not. Since Python 3.7, dictionaries remember the order in which keys were inserted. Looking "
    "up a missing key with square brackets raises KeyError, while the get method returns a "
    "default value instead.",
    "bst":
    "A binary search tree is a rooted tree in which every node holds a key greater than all keys "
    "in its left subtree and smaller than all keys in its right subtree. Searching, inserting and "
    "deleting take time proportional to the height of the tree, which is logarithmic when the "
    "tree is balanced and linear in the worst case. Red-black trees and AVL trees rebalance "
    "themselves after every update to keep the height small.",
    "sort":
    "Python lists have a sort method that sorts the list in place and returns None, while the "
    "built-in sorted function returns a new sorted list and leaves the original unchanged. Both "
    "accept a key function and a reverse flag. The algorithm is Timsort, a stable hybrid of merge "
    "sort and insertion sort that runs fast on data that is already partly ordered.",
    "mergesort":
    "Merge sort divides the input into two halves, sorts each half recursively and then merges "
    "the two sorted halves into one sorted sequence. It always runs in time proportional to n log "
    "n, needs extra memory for the merge step and is stable, which means that equal elements keep "
    "their original order. It is a natural choice for sorting linked lists and for external "
    "sorting of data that does not fit in memory.",
    "austen":
    "Pride and Prejudice follows Elizabeth Bennet, the second of five daughters of a country "
    "gentleman, as she deals with manners, upbringing, morality and marriage in the landed gentry "
    "of early nineteenth-century England. Her sharp judgements of the proud Mr Darcy slowly give "
    "way as she learns how first impressions can mislead.",
    "bronte":
    "Jane Eyre, published in 1847 under the pen name Currer Bell, tells the story of an orphaned "
    "governess who falls in love with her brooding employer, Mr Rochester, at Thornfield Hall. "
    "Charlotte Bronte's novel was an immediate success and is admired for its first-person voice, "
    "its criticism of class and religion, and its independent heroine.",
    "mercury":
    "Mercury is the smallest planet in the Solar System and the closest to the Sun. It has almost "
    "no atmosphere to retain heat, so its surface temperature swings from about minus 180 degrees "
    "Celsius at night to more than 400 degrees during the day. A year on Mercury lasts 88 Earth "
    "days, yet a single solar day lasts 176 Earth days.",
    "venus":
    "Venus is the second planet from the Sun and the hottest in the Solar System. Its thick "
    "atmosphere of carbon dioxide traps heat in a runaway greenhouse effect, keeping the surface "
    "at about 465 degrees Celsius day and night, hot enough to melt lead. Venus rotates very "
    "slowly and in the opposite direction to most planets, so the Sun rises in the west.",
    "compiler":
    "A compiler reads a program written in a high-level language and produces an equivalent "
    "program in a lower-level language, usually machine code or bytecode. Typical phases are "
    "lexical analysis, parsing, semantic analysis, optimisation and code generation. Many modern "
    "compilers use an intermediate representation so that one optimiser can serve several source "
    "languages and several target machines.",
    "interpreter":
    "An interpreter executes a program directly, statement by statement, instead of translating "
    "the whole program to machine code first. Interpreters start quickly and make debugging "
    "easy, but they usually run slower than compiled code. Many language implementations mix both "
    "approaches: they compile source code to bytecode and then interpret it, or compile hot "
    "loops just in time.",
    "linker":
    "A linker takes the object files produced by a compiler or an assembler and combines them "
    "into a single executable or library. It resolves symbols, so that a call to a function "
    "defined in another file jumps to the right address, and it relocates code and data to their "
    "final positions in memory. Static linking copies library code into the program, while "
    "dynamic linking defers that step until the program is loaded.",
    "tcp":
    "The Transmission Control Protocol provides reliable, ordered delivery of a stream of bytes "
    "between applications running on hosts that communicate over an IP network. It establishes a "
    "connection with a three-way handshake, numbers every byte, acknowledges what arrives, "
    "retransmits what is lost and slows down when the network shows signs of congestion.",
    "udp":
    "The User Datagram Protocol sends independent messages, called datagrams, from one host to "
    "another without first setting up a connection. It does not guarantee delivery, ordering or "
    "protection against duplicates, which keeps its overhead low. Applications that prefer "
    "timeliness to reliability, such as voice calls, online games and DNS lookups, use it.",
    "recursion":
    "Recursion is a method of solving a problem where the solution depends on solutions to "
    "smaller instances of the same problem. A recursive function needs a base case that stops the "
    "recursion and a recursive case that moves towards it. Without a base case, the call stack "
    "grows until the program runs out of memory.",
    "tea":
    "Darjeeling tea is grown on estates in the foothills of the Himalayas in West Bengal, India. "
    "The cool climate, the altitude and the heavy rainfall give the leaves a light colour and a "
    "floral, muscatel aroma. The first flush, picked in spring, is the most prized and often sells "
    "at high prices at auction.",
    "coffee":
    "Coffee is brewed from the roasted seeds of Coffea plants, grown mainly in Brazil, Vietnam, "
    "Colombia and Ethiopia. Its caffeine blocks adenosine receptors in the brain, which reduces "
    "the feeling of tiredness. Moderate drinking, about three to four cups a day, is not linked "
    "to heart disease in most studies, although it can raise blood pressure for a short time.",
    "everest":
    "Mount Everest, known in Nepali as Sagarmatha, is Earth's highest mountain above sea level. "
    "The China-Nepal border runs across its summit point. Its elevation of 8,848.86 metres was "
    "most recently established in 2020 by the Chinese and Nepali authorities. Climbers face "
    "altitude sickness, extreme weather and wind, and the danger of avalanches.",
    "k2":
    "K2, on the border between Pakistan and China, is the second-highest mountain on Earth at "
    "8,611 metres. It is known as the Savage Mountain because of the difficulty of its ascent and "
    "one of the highest fatality rates among the eight-thousanders. It was first climbed in 1954 "
    "by an Italian expedition, and first climbed in winter only in 2021.",
    "council":
    "The city council met on Tuesday evening to discuss the new cycling lanes planned for the "
    "town centre. Shop owners worried that the loss of parking spaces would keep customers away, "
    "while residents argued that safer streets would bring more people on foot and by bike. The "
    "committee decided to postpone its vote until June so that a traffic survey can be completed.",
    "bananas":
    "Bananas are one of the most widely eaten fruits in the world. They are a good source of "
    "potassium, vitamin B6 and dietary fibre. The plant is not a tree but a giant herb, and the "
    "fruit grows in clusters called hands. Most bananas sold in shops belong to the Cavendish "
    "variety, which is vulnerable to a fungal disease spreading across plantations.",
    "museum":
    "The museum's permanent collection spans five thousand years of art, from ancient Egyptian "
    "sculpture to contemporary installations. It is open from Tuesday to Sunday, 10 a.m. to "
    "6 p.m., and closed on Mondays and public holidays. Admission is free for visitors under 18, "
    "and guided tours in English and French start every hour from the main hall.",
}

SPECIAL = [
    "Q: Is 3.14159 > 22/7? A: No -- 22/7 = 3.142857..., so pi < 22/7 (by ~0.00126).",
    "Price: $1,299.99 (incl. 20% VAT); order #A-1047 @ 09:30 on 2024-03-15 [confirmed].",
    "e-mail: support@example.org | tel. +44 (0)20 7946 0958 | ref: XK-77/B",
    "Crème brûlée, naïve café owners, and the Ångström unit: accents are stripped.",
    "Zürich, São Paulo, Kraków and Reykjavík are cities with non-ASCII names.",
    "东京 and 北京 are capitals; ½ + ¼ = ¾; α, β and γ are Greek letters.",
    "def area(r):\n    return 3.14159 * r ** 2  # circle area, r >= 0",
    "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }  // dot product",
    "!!! URGENT !!! Read the manual (again) before running `rm -rf /tmp/*`...",
    "Привет, мир! Это предложение на русском языке.",
    "How much is 22/7 - 3.14159? About 0.00127 (i.e. 1.27e-3).",
    "Visiting Zürich: the café near the Großmünster opens at 7:30.",
    "pi = 3.14159 26535... is irrational; 355/113 = 3.1415929 is far closer than 22/7.",
    "Is 3.14 < π? Yes: π ≈ 3.1416, so 3.14 is 0.0016 too small (≈0.05%).",
]


def long_text(rng, topics):
    """The paragraphs of `topics` (each used once, in a seeded order), joined by spaces."""
    topics = list(topics)
    rng.shuffle(topics)
    return " ".join(PARAGRAPHS[t] for t in topics)


def build_records():
    rng = random.Random(SEED)
    S, P, X = SHORT, PARAGRAPHS, SPECIAL
    recs = []

    def add(name, q, pos, negs, temperature=TAU, max_length=MAX_LENGTH):
        recs.append({"name": name, "query": q, "positive": pos, "negatives": list(negs),
                     "temperature": temperature, "max_length": max_length})

    def group(name, key):  # query, positive and 4 negatives from one short topic group
        g = S[key]
        add(name, g[0], g[1], g[2:6])

    def lt(*topics):
        return long_text(rng, topics)

    # Short: every sequence under 16 tokens.
    add("short-reference", REF_HELLO, REF_FOX, [S["misc"][0], S["misc"][1], S["misc"][2],
                                               S["misc"][6]])
    group("short-hash", "hash")
    group("short-sort", "sort")
    group("short-austen", "austen")
    group("short-planet", "planet")
    group("short-tcp", "tcp")
    group("short-recursion", "recursion")
    # Medium: paragraphs of about 60 to 128 tokens, with related paragraphs as negatives.
    add("medium-hash", "How do programs look up a value by its key?", P["hash"],
        [P["dict"], P["bst"], P["sort"], P["recursion"]])
    add("medium-sort", S["sort"][0], P["sort"], [P["mergesort"], P["dict"], P["hash"], P["bst"]])
    add("medium-austen", S["austen"][0], P["austen"], [P["bronte"], P["council"], P["museum"],
                                                      P["tea"]])
    add("medium-planet", S["planet"][0], P["mercury"], [P["venus"], P["everest"], P["k2"],
                                                       P["bananas"]])
    add("medium-compiler", P["compiler"], P["interpreter"], [P["linker"], P["recursion"], P["sort"],
                                                             P["udp"]])
    add("medium-everest", P["everest"], S["misc"][8], [P["k2"], P["mercury"], S["misc"][10],
                                                       P["museum"]])
    add("medium-coffee", S["misc"][11], P["coffee"], [P["tea"], P["bananas"], S["misc"][1],
                                                      P["venus"]])
    # Long: several sequences over 128 tokens (two to four paragraphs).
    add("long-tcp", S["tcp"][0], lt("tcp", "udp"), [lt("udp", "hash", "dict"), lt("compiler",
                                                    "interpreter"), P["tcp"], S["tcp"][2]])
    add("long-query", lt("everest", "k2", "mercury"), lt("k2", "venus"),
        [lt("everest", "tea"), lt("bananas", "coffee", "tea"), lt("museum", "council"),
         lt("austen", "bronte", "council", "museum")])
    add("long-mixed", P["tea"], lt("coffee", "tea", "bananas", "museum"),
        [S["misc"][4], lt("tea", "everest", "k2"), P["coffee"], lt("bananas", "council")])
    add("long-sort", S["sort"][5], lt("mergesort", "sort"), [lt("bst", "hash"), lt("sort",
        "dict", "recursion"), lt("recursion", "compiler"), S["sort"][1]])
    # Over 512 tokens: truncation at 512 on several sequences (one left short).
    add("truncated-512", lt("hash", "dict", "bst", "sort", "mergesort", "recursion", "compiler"),
        lt("mergesort", "sort", "bst", "hash", "dict", "interpreter", "tcp"),
        [lt("udp", "tcp", "compiler", "interpreter", "recursion", "hash", "dict", "bst"),
         P["sort"], lt("everest", "k2", "mercury", "venus", "tea", "coffee"), S["sort"][0]])
    # Truncation at 128 tokens.
    add("max-length-128", lt("venus", "mercury"), lt("mercury", "k2", "everest"),
        [P["venus"], P["everest"], S["planet"][3], lt("venus", "coffee")], max_length=128)
    # Two negatives instead of four.
    add("two-negatives", S["misc"][7], P["everest"], [P["k2"], S["misc"][10]])
    # Temperature 0.1 instead of 0.05.
    add("temperature-0.1", S["tcp"][0], P["tcp"], [P["udp"], S["tcp"][3], P["compiler"],
                                                   S["tcp"][5]], temperature=0.1)
    # Punctuation, numbers, non-ASCII, code.
    add("numbers-punct", X[0], X[10], [X[12], X[13], X[1], X[2]])
    add("non-ascii", X[4], X[11], [X[3], X[5], X[9], S["misc"][4]])
    add("code", S["sort"][0], X[6], [X[7], S["sort"][1], P["sort"], X[8]])
    # A negative identical to the positive (tied scores).
    add("duplicate-negative", S["planet"][0], S["planet"][1], [S["planet"][1], S["planet"][2],
                                                               P["venus"], P["mercury"]])
    # An easy record (loss near 0): float32 cancellation in softmax - 1 dominates its gradient.
    add("easy", S["hash"][0], P["hash"], [P["council"], P["museum"], P["bananas"], P["tea"]])
    return recs


# ----------------------------------------------------------------------------------------------


def r9(x):
    """Round to SIG_DIGITS significant digits (as a JSON number)."""
    return float(f"{float(x):.{SIG_DIGITS}g}")


def record_loss(bert, id_lists, temperature):
    """Runs each sequence alone (no padding), pools, returns (loss, scores).
    id_lists: [d, x, n_1, ..., n_n]."""
    pooled = []
    for s in id_lists:
        ids = torch.tensor([s], dtype=torch.int64)
        _, last = bert.forward(ids)  # mask None: every token is real
        pooled.append(mean_pool(last)[0])
    query = pooled[0]
    cands = torch.stack(pooled[1:])
    return info_nce(query, cands, temperature)


def gradient(bert, id_lists, temperature):
    bert.zero_grad()
    loss, scores = record_loss(bert, id_lists, temperature)
    loss.backward()
    return loss, scores


def fd_check(bert32, bert64, rec, ids, elements, h=1e-5):
    """Central differences of the float64 loss for each (tensor, index) in `elements`."""
    t = rec["temperature"]
    gradient(bert32, ids, t)
    g32 = {name: bert32.p(name).grad.clone() for name, _ in elements}
    gradient(bert64, ids, t)
    g64 = {name: bert64.p(name).grad.clone() for name, _ in elements}
    out = []
    with torch.no_grad():
        for name, idx in elements:
            w = bert64.p(name)
            w0 = float(w[idx])
            w[idx] = w0 + h
            lp = float(record_loss(bert64, ids, t)[0])
            w[idx] = w0 - h
            lm = float(record_loss(bert64, ids, t)[0])
            w[idx] = w0
            fd = (lp - lm) / (2 * h)
            a64 = float(g64[name][idx])
            a32 = float(g32[name][idx])
            rel64 = abs(fd - a64) / max(abs(fd), 1e-30)
            rel32 = abs(fd - a32) / max(abs(fd), 1e-30)
            out.append({"record": rec["name"], "tensor": name,
                        "index": list(idx) if isinstance(idx, tuple) else [idx],
                        "h": h, "fd_f64": r9(fd), "autograd_f64": r9(a64), "autograd_f32": r9(a32),
                        "rel_diff_f64": float(f"{rel64:.3g}"),
                        "rel_diff_f32": float(f"{rel32:.3g}")})
            where = list(idx) if isinstance(idx, tuple) else [idx]
            print(f"fd check [{rec['name']}] {name}{where}: "
                  f"fd(f64) {fd:+.9e}  autograd f64 {a64:+.9e} (rel {rel64:.1e})  "
                  f"autograd f32 {a32:+.9e} (rel {rel32:.1e})")
    return out


def largest_in_row(g, row):
    """(row, col) of the largest |gradient| in `row` of a 2-D gradient."""
    col = int(g[row].abs().argmax())
    return (row, col)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=DEFAULT_MODEL, help="BERT checkpoint folder")
    ap.add_argument("--out", default=DEFAULT_OUT, help="fixture path to write")
    args = ap.parse_args()

    torch.manual_seed(SEED)
    # The backward of an embedding lookup accumulates repeated rows (every token hits token type 0;
    # repeated words hit the same word-embedding row); the default CPU kernel does that in a
    # thread-dependent order. The deterministic kernel makes reruns give the same file.
    torch.use_deterministic_algorithms(True)
    bert = Bert(args.model)
    # Reference check against DATA.md (same encoder as make_encoder_fixture.py).
    tok512 = load_tokenizer(args.model, MAX_LENGTH)
    e, _, _, _ = bert.embed([tok512.encode(REF_HELLO).ids])
    d_emb = max(abs(a - b) for a, b in zip(e[0, :6].tolist(), REF_HELLO_EMB6))
    print(f"reference: emb(hello world)[:6] max |diff| vs DATA.md {d_emb:.2e}")
    assert d_emb < 2e-6, d_emb

    bert.set_trainable()  # everything except the position embeddings
    bert64 = bert.to_dtype(torch.float64)
    bert64.set_trainable()
    names = [k for k in bert.names() if k != POSITION_EMBEDDINGS]
    n_params = sum(bert.p(k).numel() for k in names)
    print(f"parameters in the norm: {len(names)} tensors, {n_params} values "
          f"(excluded: {POSITION_EMBEDDINGS})")

    toks = {}

    def tokenize(text, max_length):
        if max_length not in toks:
            toks[max_length] = load_tokenizer(args.model, max_length)
        return toks[max_length].encode(text).ids

    full_tok = load_tokenizer(args.model, 100_000)

    recs = build_records()
    out = []
    fd = []
    t0 = time.time()
    for i, rec in enumerate(recs):
        texts = [rec["query"], rec["positive"]] + rec["negatives"]
        ids = [tokenize(t, rec["max_length"]) for t in texts]
        full = [len(full_tok.encode(t).ids) for t in texts]
        loss, scores = gradient(bert, ids, rec["temperature"])
        gnorm, per = grad_norms(bert)
        slices = []
        for name, row, col in SLICES:
            g = bert.p(name).grad
            if row == "query_token_1":
                row = ids[0][1]
            if row is None:
                assert g.dim() == 1, name
                vals, index = g[col: col + SLICE_LEN], [col]
            else:
                vals, index = g[row, col: col + SLICE_LEN], [row, col]
            slices.append({"tensor": name, "index": index,
                           "values": [r9(v) for v in vals.tolist()]})
        # Every included tensor must have received a gradient.
        for k in names:
            assert bert.p(k).grad is not None, k
        assert bert.p(POSITION_EMBEDDINGS).grad is None

        loss64, _ = gradient(bert64, ids, rec["temperature"])
        gnorm64, _ = grad_norms(bert64)
        loss, loss64 = loss.item(), loss64.item()
        assert math.isfinite(loss) and math.isfinite(gnorm)

        out.append({
            "name": rec["name"],
            "query": rec["query"],
            "positive": rec["positive"],
            "negatives": rec["negatives"],
            "ids": ids,
            "lengths_before_truncation": full,
            "temperature": rec["temperature"],
            "max_length": rec["max_length"],
            "scores": [r9(v) for v in scores.tolist()],
            "loss": r9(loss),
            "grad_norm": r9(gnorm),
            "loss_f64": r9(loss64),
            "grad_norm_f64": r9(gnorm64),
            "tensor_norms": {k: r9(v) for k, v in per.items()},
            "grad_slices": slices,
        })
        lens = [len(s) for s in ids]
        print(f"[{i + 1:2d}/{len(recs)}] {rec['name']:<20} lengths {lens} (full {full}) "
              f"tau {rec['temperature']} loss {float(loss):.6f} grad_norm {gnorm:.6f} "
              f"(f64 {gnorm64:.6f}, rel {abs(gnorm - gnorm64) / gnorm64:.1e}) "
              f"{time.time() - t0:.0f}s", flush=True)

        # Finite-difference checks on two records (a short one and a medium one).
        if rec["name"] in ("short-hash", "medium-planet"):
            g_q = bert.p("encoder.layer.0.attention.self.query.weight").grad
            g_o = bert.p("encoder.layer.5.output.dense.weight").grad
            g_w = bert.p("embeddings.word_embeddings.weight").grad
            elements = [
                ("encoder.layer.0.attention.self.query.weight", largest_in_row(g_q, 0)),
                ("encoder.layer.5.output.dense.weight", largest_in_row(g_o, 3)),
                ("embeddings.word_embeddings.weight", largest_in_row(g_w, ids[0][1])),
                ("encoder.layer.2.intermediate.dense.bias",
                 int(bert.p("encoder.layer.2.intermediate.dense.bias").grad.abs().argmax())),
            ]
            fd += fd_check(bert, bert64, rec, ids, elements)

    for c in fd:
        assert c["rel_diff_f64"] < 1e-6, c
        assert c["rel_diff_f32"] < 1e-3, c

    # Coverage of the brief: lengths, truncation, variants.
    all_lens = [len(s) for r in out for s in r["ids"]]
    n_trunc512 = sum(1 for r in out if r["max_length"] == 512
                     for n in r["lengths_before_truncation"] if n > 512)
    assert len(out) >= 24
    assert min(all_lens) < 16 and sum(1 for n in all_lens if n > 128) >= 10 and n_trunc512 >= 1
    assert any(len(r["negatives"]) == 2 for r in out)
    assert any(r["temperature"] == 0.1 for r in out)
    assert any(r["max_length"] == 128 and max(r["lengths_before_truncation"]) > 128 for r in out)

    fixture = {
        "model": "all-MiniLM-L6-v2",
        "torch": torch.__version__,
        "definition": DEFINITION,
        "excluded": [POSITION_EMBEDDINGS],
        "parameter_count": n_params,
        "fd_check": fd,
        "records": out,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(fixture, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    size = os.path.getsize(args.out)
    print(f"sequences: {len(all_lens)}, tokens per sequence {min(all_lens)}..{max(all_lens)}, "
          f"{sum(1 for n in all_lens if n > 128)} over 128, {n_trunc512} truncated at 512")
    print(f"wrote {os.path.relpath(args.out, ROOT)}: {len(out)} records, {len(fd)} fd checks, "
          f"{size} bytes")
    assert size < 1_000_000, "fixture must stay under 1 MB"


if __name__ == "__main__":
    sys.exit(main())
