#!/usr/bin/env python3
"""Builds a small real CLIP tokenizer (Hugging Face format) and the test cases for it.

The vocabulary is OpenAI CLIP's own, truncated to its first N BPE merges so that test
models stay small: 256 byte-unicode symbols, the same with "</w>", one token per merge,
then <|startoftext|> and <|endoftext|> (vocab size 512 + N + 2). The merges come from
`bpe_simple_vocab_16e6.txt.gz`, read from the open_clip_torch wheel (or given directly):

    pip download --no-deps open_clip_torch -d /tmp/oc
    python tools/make_tokenizer.py --bpe /tmp/oc/open_clip_torch-*.whl

Writes into --out (default tests/fixtures/tokenizer/): vocab.json, merges.txt and what
transformers' CLIPTokenizer.save_pretrained writes (tokenizer_config.json, tokenizer.json),
special_tokens_map.json as transformers 4 wrote it, plus cases.json: texts with the
input_ids / attention_mask of the fast tokenizer (padding="max_length", truncation=True).

transformers >= 5 has only the fast (tokenizers-backed) CLIPTokenizer. To record the slow
Python tokenizer too, pass --slow-python with an interpreter that has transformers < 5
(without ftfy, as in CI: the slow tokenizer then cleans text with BERT's BasicTokenizer);
this script runs itself there with --emit-slow.

`--unicode-tables model/tokenizer_unicode_tables.h` instead writes the C tables (letters,
numbers, combining classes, lower case, canonical decomposition and composition) that the
C tokenizer uses for non-ASCII text, from Python's unicodedata.
"""
import argparse
import glob
import gzip
import json
import os
import subprocess
import sys
import unicodedata
import zipfile

BPE_MEMBER = "open_clip/bpe_simple_vocab_16e6.txt.gz"


def byte_symbols():
    """The 256 printable symbols of byte-level BPE, in CLIP's vocabulary order.

    Bytes that print as themselves (! .. ~, ¡ .. ¬, ® .. ÿ) keep their code point and come
    first; the other bytes, in increasing order, take code points 256, 257, ..."""
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    mapping = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return [mapping[b] for b in keep] + [mapping[b] for b in range(256) if b not in keep]


def read_merges(bpe_path, n_merges):
    if bpe_path.endswith(".whl"):
        with zipfile.ZipFile(bpe_path) as wheel:
            raw = wheel.read(BPE_MEMBER)
    else:
        with open(bpe_path, "rb") as f:
            raw = f.read()
    lines = gzip.decompress(raw).decode("utf-8").split("\n")
    # Line 0 is a version header; CLIP uses the next 49152 - 256 - 2 lines.
    merges = [tuple(line.split()) for line in lines[1 : 1 + 49152 - 256 - 2]]
    if n_merges > len(merges):
        sys.exit(f"make_tokenizer: {bpe_path} has {len(merges)} merges, asked for {n_merges}")
    return merges[:n_merges]


def write_tokenizer(out, merges, max_length):
    from transformers import CLIPTokenizer

    symbols = byte_symbols()
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(set(vocab)) == len(vocab)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({tok: i for i, tok in enumerate(vocab)}, f, ensure_ascii=False)
    with open(os.path.join(out, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        f.writelines(f"{a} {b}\n" for a, b in merges)
    tok = CLIPTokenizer(
        vocab=os.path.join(out, "vocab.json"),
        merges=os.path.join(out, "merges.txt"),
        model_max_length=max_length,
    )
    tok.save_pretrained(out)
    # transformers 5 no longer writes special_tokens_map.json; checkpoints made by older
    # versions have it, and rcc's loader reads it, so write it as they did (plain strings).
    specials = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
                "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}
    with open(os.path.join(out, "special_tokens_map.json"), "w", encoding="utf-8") as f:
        json.dump(specials, f, indent=2)
        f.write("\n")
    # tokenizer.json repeats vocab and merges; written without indentation it is 2.4x smaller.
    tok_json = os.path.join(out, "tokenizer.json")
    with open(tok_json, encoding="utf-8") as f:
        data = json.load(f)
    with open(tok_json, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, separators=(",", ":"))
    # save_pretrained may rewrite vocab.json / merges.txt; check they still load.
    again = CLIPTokenizer.from_pretrained(out)
    assert again.get_vocab() == {t: i for i, t in enumerate(vocab)}
    assert again.model_max_length == max_length
    return again


def case_texts(max_length):
    """(text, max_length) pairs: ASCII captions and edge cases, then non-ASCII UTF-8."""
    long_text = " ".join(["a photo of a striped shirt with long sleeves"] * 12)
    ascii_texts = [
        "a photo of a t-shirt or top.",
        "a photo of a trouser.",
        "a photo of a pullover.",
        "a photo of a dress.",
        "a photo of a coat.",
        "a photo of a sandal.",
        "a photo of a shirt.",
        "a photo of a sneaker.",
        "a photo of a bag.",
        "a photo of an ankle boot.",
        "A PHOTO OF A Red DRESS",
        "  leading and trailing spaces   ",
        "tabs\tand\t\tnew\nlines\r\n\n  mixed \x0b\x0c vertical",
        "what?!... really!!! (yes) [no] {maybe} <|tag|> @user #hash $5 100% a&b",
        "it's isn't they're we've i'm you'll he'd",
        "IT'S THEY'RE 'S 'sxyz o'clock rock'n'roll",
        "'s's't 're've",
        "12345 3.14 1,000,000 2nd 007",
        "pneumonoultramicroscopicsilicovolcanoconiosis",
        "supercalifragilisticexpialidocious antidisestablishmentarianism",
        "",
        "   ",
        "a",
        "<|startoftext|>a photo<|endoftext|> of <|endoftext|>",
        "x" * 200,
        "~`^_=+-*/\\|;:\"",
        "don't stop-believing_now",
        "x<|ENDOFTEXT|>> and <|StartOfText|>!'s",
        long_text,
    ]
    non_ascii = [
        "café crème brûlée",
        "naïve façade São Paulo",
        "Straße ÄÖÜ",
        "cafe\u0301 (decomposed accent)",
        "a photo of a 👗 dress 👠👠",
        "😀😃😄 emoji only",
        "日本語のテキスト",
        "中文 和 English 混合",
        "한국어 문장",
        "Привет мир",
        "ελληνικά ΚΕΦΑΛΑΙΑ",
        "\u00a0non-breaking\u2003em space\u3000ideographic",
        "price: 5€ or £4 — “quoted” ‘single’ …",
        "٣ arabic-indic digit ½ fraction Ⅻ roman",
        "\u212b\u0301 o\u0308\u0301 a\u0301\u0323 İstanbul \u1100\u1161\u11a8 (NFC)",
        "ﬁne ǅ ΣΑΣ ﾊﾝｶｸ \ufeffzero\u200bwidth",
    ]
    cases = [(t, max_length) for t in ascii_texts] + [(t, max_length) for t in non_ascii]
    cases.append(("a photo of a t-shirt or top.", 16))
    cases.append((long_text, 16))
    cases.append(("CAFÉ 👗 日本", 16))
    return cases


def ranges(predicate):
    """[first, last] runs of code points where predicate holds."""
    out, start = [], None
    for c in range(sys.maxunicode + 2):
        inside = c <= sys.maxunicode and predicate(c)
        if inside and start is None:
            start = c
        elif not inside and start is not None:
            out.append((start, c - 1))
            start = None
    return out


def lower_runs():
    """(first, last, stride, delta): c in first, first+stride .. last maps to c + delta.

    Only one-to-one mappings: U+0130 (the only code point whose lower case is two code
    points, "i" + U+0307) is handled in C."""
    pairs = [(c, ord(chr(c).lower()) - c) for c in range(sys.maxunicode + 1)
             if len(chr(c).lower()) == 1 and chr(c).lower() != chr(c)]
    runs = []
    for c, delta in pairs:
        if runs:
            first, last, stride, d = runs[-1]
            if d == delta and ((first == last and c - last in (1, 2)) or c - last == stride):
                runs[-1] = (first, c, c - last, d)
                continue
        runs.append((c, c, 1, delta))
    return runs


def compositions():
    """(first, second, composite): the canonical pairs NFC composes, Hangul excluded."""
    out = []
    for c in range(sys.maxunicode + 1):
        d = unicodedata.decomposition(chr(c))
        if not d or d.startswith("<") or len(d.split()) != 2:
            continue
        a, b = (int(x, 16) for x in d.split())
        if unicodedata.normalize("NFC", chr(a) + chr(b)) == chr(c):
            out.append((a, b, c))
    return sorted(out)


def decompositions():
    """(code point, first, second or 0): one level of canonical decomposition, Hangul excluded."""
    out = []
    for c in range(sys.maxunicode + 1):
        d = unicodedata.decomposition(chr(c))
        if d and not d.startswith("<"):
            parts = [int(x, 16) for x in d.split()]
            out.append((c, parts[0], parts[1] if len(parts) > 1 else 0))
    return out


def write_unicode_tables(path):
    """Writes the C tables behind model/tokenizer_unicode.c (Python's Unicode database)."""
    cat = unicodedata.category
    tables = [
        ("rcc_tok_letter_ranges", "[2]", ranges(lambda c: cat(chr(c)).startswith("L"))),
        ("rcc_tok_number_ranges", "[2]", ranges(lambda c: cat(chr(c)).startswith("N"))),
        ("rcc_tok_combining_ranges", "[3]", [
            (a, b, unicodedata.combining(chr(a)))
            for a, b in ranges(lambda c: unicodedata.combining(chr(c)) != 0)
            for a, b in _split_by_class(a, b)]),
        ("rcc_tok_lower_runs", "[4]", lower_runs()),
        ("rcc_tok_decompositions", "[3]", decompositions()),
        ("rcc_tok_compositions", "[3]", compositions()),
    ]
    with open(path, "w", encoding="ascii") as f:
        f.write("/* Unicode tables for the CLIP tokenizer, generated by tools/make_tokenizer.py\n"
                f" * --unicode-tables from Python's Unicode {unicodedata.unidata_version} database. "
                "Do not edit. */\n#pragma once\n#include <stdint.h>\n")
        for name, shape, rows in tables:
            f.write(f"\nstatic const uint32_t {name}[{len(rows)}]{shape} = {{\n")
            cells = ["{" + ",".join(f"0x{v:X}" if v >= 0 else f"(uint32_t)-0x{-v:X}" for v in row)
                     + "}," for row in rows]
            line = " "
            for cell in cells:
                if len(line) + len(cell) + 1 > 92:
                    f.write(line + "\n")
                    line = " "
                line += " " + cell
            f.write(line + "\n};\n")
    print(f"make_tokenizer: wrote {path}")


def _split_by_class(first, last):
    """Splits a run of combining marks into runs of one combining class."""
    start = first
    for c in range(first + 1, last + 2):
        if c > last or unicodedata.combining(chr(c)) != unicodedata.combining(chr(start)):
            yield start, c - 1
            start = c


def encode(tok, text, max_length):
    enc = tok(text, padding="max_length", truncation=True, max_length=max_length)
    return list(enc["input_ids"]), list(enc["attention_mask"])


def emit_slow(out, cases_path):
    """Runs under transformers < 5: prints the slow tokenizer's ids for each case."""
    from transformers import CLIPTokenizer, CLIPTokenizerFast

    slow = CLIPTokenizer.from_pretrained(out)
    fast = CLIPTokenizerFast.from_pretrained(out)
    with open(cases_path, encoding="utf-8") as f:
        cases = json.load(f)
    result = []
    for case in cases:
        ids, _ = encode(slow, case["text"], case["max_length"])
        fast_ids, _ = encode(fast, case["text"], case["max_length"])
        result.append({"slow": ids, "fast_v4": fast_ids})
    json.dump(result, sys.stdout)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bpe", help="bpe_simple_vocab_16e6.txt.gz or the open_clip_torch wheel "
                        "(default: the first /tmp/oc/open_clip_torch-*.whl)")
    parser.add_argument("--merges", type=int, default=4000, help="BPE merges kept (default 4000)")
    parser.add_argument("--max-length", type=int, default=77, help="model_max_length (default 77)")
    parser.add_argument("--out", default=os.path.join(here, "..", "tests", "fixtures", "tokenizer"))
    parser.add_argument("--no-cases", action="store_true", help="write the tokenizer files only")
    parser.add_argument("--slow-python", help="python with transformers < 5, to record the slow "
                        "tokenizer's ids next to the fast one's")
    parser.add_argument("--unicode-tables", metavar="HEADER", help="write the C Unicode tables "
                        "(model/tokenizer_unicode_tables.h) and stop")
    parser.add_argument("--emit-slow", metavar="CASES_JSON", help=argparse.SUPPRESS)
    args = parser.parse_args()
    out = os.path.normpath(args.out)

    if args.unicode_tables:
        write_unicode_tables(args.unicode_tables)
        return
    if args.emit_slow:
        emit_slow(out, args.emit_slow)
        return

    bpe = args.bpe
    if bpe is None:
        wheels = sorted(glob.glob("/tmp/oc/open_clip_torch-*.whl"))
        if not wheels:
            sys.exit("make_tokenizer: no --bpe given and no /tmp/oc/open_clip_torch-*.whl "
                     "(pip download --no-deps open_clip_torch -d /tmp/oc)")
        bpe = wheels[0]
    tok = write_tokenizer(out, read_merges(bpe, args.merges), args.max_length)
    print(f"make_tokenizer: wrote {out} (vocab {len(tok.get_vocab())}, "
          f"model_max_length {args.max_length})")
    if args.no_cases:
        return

    cases = []
    for text, max_length in case_texts(args.max_length):
        ids, mask = encode(tok, text, max_length)
        cases.append({"text": text, "max_length": max_length, "input_ids": ids,
                      "attention_mask": mask})
    cases_path = os.path.join(out, "cases.json")
    if args.slow_python:
        with open(cases_path, "w", encoding="utf-8") as f:
            json.dump(cases, f)
        slow = json.loads(subprocess.run(
            [args.slow_python, os.path.abspath(__file__), "--out", out, "--emit-slow", cases_path],
            check=True, capture_output=True, text=True).stdout)
        for case, other in zip(cases, slow):
            if other["fast_v4"] != case["input_ids"]:
                sys.exit(f"make_tokenizer: transformers 4 fast tokenizer differs on {case['text']!r}")
            case["slow_input_ids"] = other["slow"]
            case["slow_agrees"] = other["slow"] == case["input_ids"]
            if not case["slow_agrees"]:
                print(f"make_tokenizer: slow and fast differ on {case['text']!r}")
    with open(cases_path, "w", encoding="utf-8") as f:
        # One case per line keeps the file small and its diffs readable.
        f.write("[\n" + ",\n".join(json.dumps(c, ensure_ascii=False) for c in cases) + "\n]\n")
    print(f"make_tokenizer: wrote {len(cases)} cases to {cases_path}")


if __name__ == "__main__":
    main()
