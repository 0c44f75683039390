#!/usr/bin/env python3
"""Writes Tests/GradNormIRTests/Fixtures/tokenizer_ids.jsonl: reference token ids for BertTokenizer.

Each line is one JSON object {"text": ..., "ids": [...]}: the ids that the Hugging Face
`tokenizers` library gives for `text` with all-MiniLM-L6-v2's tokenizer.json, special tokens
added, no padding, truncation to 512 tokens. The file is pure ASCII (non-ASCII text is \\u-escaped)
so that no editor or tool can re-normalise it.

Rerun from the package root, after `make setup` has unpacked the model:

    pip install tokenizers            # any recent version; 0.23.3 made the committed file
    python3 scripts/make_tokenizer_fixture.py [--model models/all-MiniLM-L6-v2] [--out PATH]

The output is deterministic (fixed seed). Then run `swift test --filter TokenizerTests`.

Cases: hand-written strings by theme (English, accents, case, CJK, emoji, combining marks,
punctuation, URLs, code, numbers, control and format characters, whitespace variants, long words,
scripts, special tokens, truncation), seeded random strings over a mixed alphabet, and a sweep
over every code point whose class matters to BERT's normaliser (controls, format characters,
marks, punctuation, separators, canonically decomposable characters, upper-case letters, and code
points whose Unicode category changed after Unicode 8.0, the version of the reference's tables).
"""

import argparse
import json
import os
import random
import sys
import unicodedata

from tokenizers import Tokenizer

MAX_LENGTH = 512
SEED = 20240611


def handwritten():
    cases = []

    # Plain English, including the DATA.md references.
    cases += [
        "hello world",
        "The quick brown fox jumps over the lazy dog.",
        "A retriever maps queries and documents into one vector space.",
        "Gradient norms can flag documents that a dense retriever has never seen.",
        "It's a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.",
        "What is the difference between a list and a tuple in Python?",
        "Don't panic; it's only a test -- isn't it?",
        "unbelievably, the antidisestablishmentarianism debate continued",
        "tokenization tokenizer tokenizing tokenized detokenize",
        "The mitochondria is the powerhouse of the cell.",
        "I can't believe you've done this!",
        "she said \"yes\" and he said 'no'",
        "Rock 'n' roll isn't dead; it's resting.",
        "e.g. i.e. etc. vs. Dr. Mr. Mrs. St. U.S.A.",
        "semi-supervised state-of-the-art end-to-end",
        "well-known, long-term, high-quality, low-cost",
        "Supercalifragilisticexpialidocious",
        "pneumonoultramicroscopicsilicovolcanoconiosis",
        "zzzzzzzzzzzzzzzzzz qqqqq xylophone",
        "a b c d e f g h i j k l m n o p q r s t u v w x y z",
    ]

    # Upper and mixed case.
    cases += [
        "HELLO WORLD",
        "The QUICK Brown FoX",
        "McDonald's iPhone eBay YouTube",
        "NASA ESA CERN UNESCO",
        "CamelCaseIdentifierName",
        "snake_case_identifier_name",
        "SCREAMING_SNAKE_CASE",
    ]

    # Accents and diacritics (stripped after NFD) and letters that do not decompose.
    cases += [
        "caf\u00e9",
        "cafe\u0301",
        "na\u00efve",
        "\u00c5ngstr\u00f6m",
        "A\u030angstro\u0308m",
        "\u212bngstr\u00f6m",  # U+212B ANGSTROM SIGN, a singleton decomposition
        "Z\u00fcrich",
        "r\u00e9sum\u00e9 d\u00e9j\u00e0 vu cr\u00e8me br\u00fbl\u00e9e",
        "Se\u00f1or Pi\u00f1a Colada",
        "S\u00e3o Paulo, Cura\u00e7ao, Bogot\u00e1",
        "Stra\u00dfe Gr\u00fc\u00dfe \u1e9e",
        "\u0141\u00f3d\u017a \u017b\u00f3\u0142w \u0142\u0105ka",
        "\u010cesk\u00fd Krumlov, \u0159e\u0159icha",
        "\u00de\u00f3r \u00f0a\u00f0 \u00e6\u00f8\u00e5 \u00c6\u00d8\u00c5 \u0153uvre",
        "Ti\u1ebfng Vi\u1ec7t c\u00f3 nhi\u1ec1u d\u1ea5u",
        "\u0130stanbul \u0131s\u0131k I\u0131 \u0130i",
        "\u01c5 \u01c4 \u01c6 \u01f2",  # titlecase digraphs
        "\ufb01nance \ufb03 \ufb00",  # ligatures: compatibility only, NFD keeps them
        "\u00bd \u00bc x\u00b2 H\u2082O \u2460 \u2474",
    ]

    # CJK, kana, hangul, fullwidth.
    cases += [
        "\u6211\u7231\u81ea\u7136\u8bed\u8a00\u5904\u7406",
        "\u4eca\u5929\u5929\u6c14\u5f88\u597d\uff0c\u6211\u4eec\u53bb\u516c\u56ed\u5427\u3002",
        "\u6771\u4eac\u306f\u65e5\u672c\u306e\u9996\u90fd\u3067\u3059\u3002",
        "\u3053\u3093\u306b\u3061\u306f\u4e16\u754c",
        "\u30ab\u30bf\u30ab\u30ca \u30b3\u30f3\u30d4\u30e5\u30fc\u30bf\u30fc",
        "\u30cf\u309a \u304b\u3099",  # kana with combining (semi-)voiced marks
        "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8 \ucc98\ub9ac",
        "\uc548\ub155\ud558\uc138\uc694 \uc138\uacc4",
        "\u1112\u1161\u11ab",  # conjoining jamo
        "\U00020000\U0002a6d6 \U0002b740 \U0002f800",  # CJK extension B, D and compatibility supplement
        "\uf900\uf901 \ufa10",  # CJK compatibility ideographs (singleton decompositions)
        "\u3400\u4dbf \u9fff \u9fa5",
        "\u2e80 \u2f00 \u31c0 \u3005 \u3007",  # radicals, strokes, iteration mark: not in BERT's CJK ranges
        "\uff21\uff22\uff23\uff11\uff12\uff13 \uff01\uff1f",  # fullwidth forms
        "mixed\u4e2d\u6587english\u65e5\u672c\u8a9ekorean\ud55c\uad6d\uc5b4",
        "\u300c\u5f15\u7528\u300d\u3010\u62ec\u53f7\u3011\u300a\u4e66\u540d\u300b",
    ]

    # Emoji: simple, skin tones, ZWJ sequences, flags, keycaps, variation selectors, newer emoji.
    cases += [
        "I love pizza \U0001f355\U0001f355\U0001f355",
        "\U0001f600\U0001f601\U0001f602 lol",
        "thumbs up \U0001f44d\U0001f3fd",
        "family \U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 emoji",
        "flags \U0001f1fa\U0001f1f8 \U0001f1ef\U0001f1f5 \U0001f1e9\U0001f1ea",
        "rainbow flag \U0001f3f3\ufe0f\u200d\U0001f308",
        "\u2764\ufe0f \u2764 \u263a\ufe0f",
        "keycap 1\ufe0f\u20e3 #\ufe0f\u20e3",
        "\U0001f970 \U0001f97a \U0001fae0 \U0001fae8",  # Unicode 11, 11, 14, 15
        "\U0001f9d1\U0001f3fb\u200d\U0001f4bb coder",
        "\u2603\u2614\u26a1 \u2705 \u274c",
        "emoji\U0001f525in\U0001f525words",
    ]

    # Combining marks in odd places.
    cases += [
        "\u0301",
        "\u0301abc",
        "a\u0301\u0302\u0303\u0304\u0305\u0306\u0307",
        "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034da\u0310\u0300lgo t\u0356e\u033ex\u0301t",
        "1\u20dd 2\u20e3",  # enclosing marks (Me, kept)
        "q\u0323\u0307 q\u0307\u0323",  # canonical reordering
        "\u1e9b\u0323",
        "\u0915\u093c \u0958",  # nukta
        "\u05e9\u05c1\u05b8\u05dc\u05d5\u05b9\u05dd",  # Hebrew with points
    ]

    # Punctuation runs and symbols.
    cases += [
        "!!!???...",
        "Wait... what?!?!",
        "\u00bfQu\u00e9? \u00a1Hola!",
        "\u00abguillemets\u00bb \u201csmart quotes\u201d \u2018single\u2019",
        "em\u2014dash en\u2013dash minus\u2212sign hyphen\u2010here",
        "ellipsis\u2026 bullet\u2022 middot\u00b7 dagger\u2020",
        "@#$%^&*()_+-=[]{}|;':\",./<>?`~\\",
        "((((nested))))",
        "----====****____",
        "\u3001\u3002\uff0c\uff0e\uff1a\uff1b\uff01\uff1f",
        "\u00a7 \u00b6 \u2030 \u2032 \u2033 \u203b \u2042",
        "$100 \u20ac50 \u00a320 \u00a51000 \u20b9 \u20bf",
        "\u00a9 \u00ae \u2122 \u2116 \u2103",
        "#hashtag ##double ###triple C# F#",
        "##ing ##s ##",
        "<<>> <=> -> => |> ::",
    ]

    # URLs, e-mail addresses, paths.
    cases += [
        "https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2",
        "http://example.com/path?query=1&other=two#fragment",
        "Visit www.example.org or ftp://files.example.net/pub/readme.txt",
        "contact: john.doe+tag@example.co.uk, jane_doe@sub.domain.org",
        "/usr/local/bin/swift --scratch-path .build-tok",
        "C:\\Users\\Admin\\Documents\\file.txt",
        "git@github.com:huggingface/tokenizers.git",
        "https://en.wikipedia.org/wiki/Z%C3%BCrich",
    ]

    # Code snippets.
    cases += [
        "def f(x): return x ** 2 + 1",
        "for (int i = 0; i < n; ++i) { sum += a[i]; }",
        "let ids = tokenizer.encode(\"hello\", maxLength: 512)",
        "SELECT * FROM users WHERE id = 42 AND name LIKE '%bob%';",
        "<div class=\"main\"><p>Hello &amp; welcome</p></div>",
        "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
        "x = lambda a, b: a if a > b else b  # comment",
        "fn main() {\n    println!(\"{}\", 1 + 2);\n}",
        "$ echo $HOME && ls -la | grep '\\.swift$'",
    ]

    # Numbers and math.
    cases += [
        "3.14159265358979323846",
        "1,000,000 and 1.000.000 and 1 000 000",
        "1e-9 6.022e23 -42 +7 0x1F 0b1010 0o17",
        "2024-06-11T12:34:56Z",
        "(555) 123-4567 ext. 89",
        "\u2211 \u222b \u221a \u2264 \u2265 \u2260 \u00b1 \u00d7 \u00f7 \u221e \u03c0",
        "E = mc\u00b2, a\u00b2 + b\u00b2 = c\u00b2, x\u2081 + x\u2082",
        "\u2200x \u2208 \u211d, \u2203y: x < y \u2227 y \u2209 \u2205",
        "\U0001d400\U0001d401\U0001d402 \U0001d7d8\U0001d7d9",  # mathematical alphanumerics
        "\u0661\u0662\u0663 \u0967\u0968\u0969 \u0e51\u0e52",  # non-ASCII digits
    ]

    # Control and format characters (removed), replacement character, private use, unassigned.
    cases += [
        "nul\u0000byte",
        "bell\u0007char",
        "zero\u200bwidth\u200bspace",
        "\ufeffbyte order mark",
        "soft\u00adhyphen",
        "zwj\u200djoiner zwnj\u200cnonjoiner",
        "word\u2060joiner",
        "escape\u001b[31mred\u001b[0m",
        "del\u007fete",
        "vertical\u000btab form\u000cfeed",
        "next\u0085line",
        "separators\u001c\u001d\u001e\u001f",
        "replacement\ufffdchar",
        "bidi \u202aLRE\u202c \u202eRLO\u202c \u200eLRM \u200fRLM",
        "private\ue000use \U000f0000 \U0010fffd",
        "unassigned\u0378 \uffff \U000e0080",
        "tag \U000e0041\U000e0042 chars",
        "mongolian\u180evowel separator",
        "arabic\u0600number \u061cmark \u0890 \u08e2",  # U+0890 and U+08E2 are Cf only after Unicode 8.0
        "\u0000\u0000\u0000",
        "\u200b",
    ]

    # Whitespace variants.
    cases += [
        "tab\tseparated\tvalues",
        "line one\nline two\r\nline three\rend",
        "non\u00a0breaking\u00a0space",
        "thin\u2009space hair\u200aspace em\u2003space",
        "ideographic\u3000space",
        "narrow\u202fnbsp medium\u205fmath",
        "ogham\u1680space",
        "line\u2028separator paragraph\u2029separator",
        "  leading and trailing  ",
        "multiple     spaces    between",
        "\t\n\r mixed \t\n\r",
    ]

    # Empty and whitespace-only.
    cases += ["", " ", "   ", "\t", "\n", "\r\n", " \t\n\r\u00a0\u3000\u2003 ", "\u200b\ufeff\u00ad"]

    # Words around the 100-character limit (characters = scalars after normalisation).
    cases += [
        "a" * 99,
        "a" * 100,
        "a" * 101,
        "x " + "ab" * 50 + " y",
        "x " + "ab" * 50 + "c y",
        "\u00e9" * 100,  # NFD + strip leaves exactly 100 scalars
        "\u00e9" * 101,
        "e\u0301" * 60,  # 120 scalars before stripping, 60 after
        "\u4e2d" * 150,  # each ideograph is its own word
        "word" * 40,
        "internationalization" * 5 + " ok",
        "\U0001f600" * 101,
        "a" * 150 + "." + "b" * 50,
        "-".join(["x" * 60] * 3),
        "\u0130" * 100,  # each becomes i + U+0307, stripped: 100 scalars
        "https://example.com/" + "very-long-path-segment/" * 8,
    ]

    # Scripts.
    cases += [
        "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u041a\u0430\u043a \u0434\u0435\u043b\u0430?",
        "\u0401\u043b\u043a\u0430 \u0439\u043e\u0433\u0443\u0440\u0442 \u0419\u041e\u0413\u0410",
        "\u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5 \u039a\u03cc\u03c3\u03bc\u03b5",
        "\u039a\u03b1\u03bb\u03b7\u03bc\u03ad\u03c1\u03b1 \u038c\u03bb\u03bf\u03b9 \u03a3\u0391\u03a3 \u03c3\u03b1\u03c2",
        "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
        "\u0627\u0644\u0652\u0639\u064e\u0631\u064e\u0628\u0650\u064a\u064e\u0651\u0629",  # with harakat
        "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",
        "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e04\u0e23\u0e31\u0e1a \u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22",
        "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e",
        "\u0939\u093f\u0928\u094d\u0926\u0940 \u092d\u093e\u0937\u093e \u0915\u094d\u0937\u0924\u094d\u0930\u093f\u092f",
        "\u09ac\u09be\u0982\u09b2\u09be \u0a2a\u0a70\u0a1c\u0a3e\u0a2c\u0a40 \u0ba4\u0bae\u0bbf\u0bb4\u0bcd",
        "\u10e5\u10d0\u10e0\u10d7\u10e3\u10da\u10d8 \u0540\u0561\u0575\u0565\u0580\u0565\u0576",
        "\u12a0\u121b\u122d\u129b \u1780\u17d2\u1798\u17c2\u179a",
        "\u0f56\u0f7c\u0f51\u0f0b\u0f61\u0f72\u0f42 \u1019\u103c\u1014\u103a\u1019\u102c",
        "\u13e3\u13b3\u13a9 \u1403\u14c4\u1483\u144e\u1450\u1466 \u166d",  # U+166D was Po in Unicode 8.0
        "\u1734 \u1885\u1886 \ua9bd \U000111c9 \U0001171e \U00011938",  # category changes since Unicode 8.0
        "\U00011f00\U00011f01 \U00011f41",  # Kawi (Unicode 15)
        "\u02b9 \u0374 \u1fbe \u1fef \u1ffd \u037e \u0387",  # singleton decompositions
    ]

    # Special tokens are matched verbatim in the raw text, before normalisation.
    cases += [
        "hello [MASK] world",
        "a[CLS]b",
        "[CLS] [SEP] [PAD] [UNK] [MASK]",
        "[cls] [Sep] [mask]",
        "[[SEP]]",
        "[MASK\u0301]",
        "x\u0301[UNK]\u0301",
        "[MASK",
        "MASK]",
        "[ MASK ]",
        "[SEP][SEP][SEP]",
        "\u00c9T\u00c9[MASK]\u00c9T\u00c9",
    ]

    # Long texts: truncation to 512 (510 pieces between [CLS] and [SEP]).
    pangram = "The quick brown fox jumps over the lazy dog. "
    cases += [
        pangram * 60,
        "Tokenization of multilingual text, internationalization, and unbelievably long documents. " * 40,
        "\u4e2d\u6587" * 350,
        "\U0001f600 " * 600,
        "a " * 509 + "[MASK] tail",
        "a " * 510 + "[MASK] tail",
        "a " * 508 + "unbelievably ok",  # a word's pieces cut by truncation
        "x" * 40 + " " + "caf\u00e9 na\u00efve " * 300,
    ]
    return cases


def random_strings(rng, count):
    alphabet = (
        list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        + list(" " * 12) + list("\t\n\r") + list(".,;:!?'\"()[]{}-_/\\@#$%^&*+=<>|~`")
        + list("\u00e9\u00e8\u00ea\u00eb\u00e0\u00e4\u00f6\u00fc\u00df\u00e7\u00f1\u00c5\u00d8\u0130\u0131")
        + list("\u0301\u0308\u0327\u0303\u0323")  # combining marks
        + list("\u4e2d\u6587\u5b57\u7b26\u65e5\u672c\u8a9e")  # CJK
        + list("\u3042\u3044\u3046\u30ab\u30ad\u30af")  # kana
        + list("\ud55c\uad6d\uc5b4\uac00\ud7a3")  # hangul
        + list("\u0430\u0431\u0432\u0413\u0414\u03b1\u03b2\u03b3\u0394\u03a3")  # Cyrillic, Greek
        + list("\u0627\u0644\u0639\u064e\u05d0\u05d1\u0e01\u0e31\u0915\u094d")  # Arabic, Hebrew, Thai, Devanagari
        + ["\U0001f600", "\U0001f44d", "\U0001f3fd", "\u200d", "\ufe0f", "\U0001f1fa", "\U0001f1f8"]
        + list("\u0000\u0007\u200b\ufeff\u00ad\u00a0\u3000\u2009\u0085\ufffd\ue000")
        + list("\u2014\u2026\u00ab\u00bb\u201c\u201d\u3002\uff0c\u00bf\u00a1")
        + list("\u00b2\u00bd\u2211\u221e\u00b1\u20ac")
    )
    words = ["the", "of", "retrieval", "gradient", "norm", "[MASK]", "[SEP]", "un", "##ing", "tokenizer"]
    out = []
    for k in range(count):
        n = rng.randint(1, 120 if k % 10 else 400)
        parts = []
        for _ in range(n):
            if rng.random() < 0.08:
                parts.append(rng.choice(words))
            else:
                parts.append(rng.choice(alphabet))
        out.append("".join(parts))
    return out


# Code points whose category in the reference's Unicode 8.0 tables differs from current Unicode.
CATEGORY_CHANGES = [0x166D, 0x1734, 0x1885, 0x1886, 0xA9BD, 0x111C9, 0x1171E, 0x11938,
                    0x0890, 0x0891, 0x08E2, 0x110CD, 0x13430, 0x13438, 0x11F00, 0x1FAE9, 0x1CC00]


def sweep_lines():
    """Every code point (planes 0-2) whose class matters to the normaliser or pre-tokeniser, as
    "x{c}y {c}" items (inside a word and alone), 50 items a line; upper-case letters alone."""
    classes = {"Cc", "Cf", "Mn", "Mc", "Me", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Zs", "Zl", "Zp"}
    inside, alone = [], []
    for cp in range(0x30000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        cat = unicodedata.category(c)
        if cat in classes or unicodedata.decomposition(c).startswith(tuple("0123456789ABCDEF")):
            inside.append(cp)
        elif cat in ("Lu", "Lt"):
            alone.append(cp)
    # Hangul syllables decompose algorithmically; a sample is enough.
    inside = [cp for cp in inside if not (0xAC00 <= cp <= 0xD7A3) or cp % 97 == 0]
    inside += [cp for cp in CATEGORY_CHANGES if cp not in inside]
    inside += [0xE000, 0xF8FF, 0xF0000, 0x10FFFD, 0x0378, 0xFFFF, 0xE0001, 0xE0100]
    lines = []
    for k in range(0, len(inside), 50):
        lines.append(" ".join("x%sy %s" % (chr(cp), chr(cp)) for cp in inside[k:k + 50]))
    for k in range(0, len(alone), 100):
        lines.append(" ".join(chr(cp) for cp in alone[k:k + 100]))
    return lines


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=os.path.join(root, "models", "all-MiniLM-L6-v2"))
    parser.add_argument("--out", default=os.path.join(root, "Tests", "GradNormIRTests", "Fixtures", "tokenizer_ids.jsonl"))
    parser.add_argument("--random", type=int, default=60, help="number of seeded random strings")
    args = parser.parse_args()

    tokenizer = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=MAX_LENGTH)

    rng = random.Random(SEED)
    texts = handwritten() + random_strings(rng, args.random) + sweep_lines()
    seen = set()
    unique = []
    for t in texts:
        if t not in seen:
            seen.add(t)
            unique.append(t)

    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="ascii", newline="\n") as f:
        for text in unique:
            ids = tokenizer.encode(text).ids
            f.write(json.dumps({"text": text, "ids": ids}, ensure_ascii=True) + "\n")
    size = os.path.getsize(args.out)
    print("wrote %d lines, %d bytes, to %s" % (len(unique), size, args.out), file=sys.stderr)


if __name__ == "__main__":
    main()
