#!/usr/bin/env python3
"""Builds a multilingual English -> X parallel corpus from the gettext catalogs on this machine.

Debian packages ship their translations as compiled gettext catalogs
(/usr/share/locale/<locale>/LC_MESSAGES/<domain>.mo): each maps an English user-interface
message (msgid) to a human translation (msgstr). This script reads them all with the standard
library only and writes Tailor's translation JSONL format:

    {"src": ..., "tgt": ..., "src_lang": "eng_Latn", "tgt_lang": "deu_Latn", "origin": "<domain>"}

Rules (see datasets/gettext-translations/README.md):
  * locales map to FLORES-200 codes (LOCALES below); variants (@latin, en_*) are skipped;
  * the header entry, entries with a context (msgctxt) or plural forms, and untranslated entries
    (msgstr empty or equal to msgid) are dropped;
  * text is kept exactly as written: format placeholders (%s, %1$d, %(name)s, {name}, ${VAR}),
    markup (<b>, &amp;) and newlines stay intact, and an entry is dropped unless the source and
    the translation hold the same multiset of placeholders and of markup tags;
  * messages longer than --max-chars are dropped;
  * duplicates: per language and source text, the most frequent translation is kept (ties: the
    smallest string), so each source has one target per language;
  * the split is by a hash of the English text, so a sentence lands in the same split for every
    language (no leakage from train into dev/test): 2% test, 2% dev, the rest train.
Output is sorted and deterministic for a given set of installed catalogs.

    python3 datasets/make_translation_corpus.py --out /tmp/gettext-corpus           # full corpus
    python3 datasets/make_translation_corpus.py --sample datasets/gettext-translations  # sample
"""
import argparse
import collections
import glob
import hashlib
import json
import os
import re
import struct
import sys

# gettext locale -> FLORES-200 code.
LOCALES = {
    "af": "afr_Latn", "am": "amh_Ethi", "ar": "arb_Arab", "ast": "ast_Latn", "az": "azj_Latn",
    "be": "bel_Cyrl", "bg": "bul_Cyrl", "bn": "ben_Beng", "bs": "bos_Latn", "ca": "cat_Latn",
    "cs": "ces_Latn", "cy": "cym_Latn", "da": "dan_Latn", "de": "deu_Latn", "el": "ell_Grek",
    "eo": "epo_Latn", "es": "spa_Latn", "et": "est_Latn", "eu": "eus_Latn", "fa": "pes_Arab",
    "fi": "fin_Latn", "fo": "fao_Latn", "fr": "fra_Latn", "fur": "fur_Latn", "ga": "gle_Latn",
    "gd": "gla_Latn", "gl": "glg_Latn", "gu": "guj_Gujr", "he": "heb_Hebr", "hi": "hin_Deva",
    "hr": "hrv_Latn", "hu": "hun_Latn", "hy": "hye_Armn", "id": "ind_Latn", "is": "isl_Latn",
    "it": "ita_Latn", "ja": "jpn_Jpan", "ka": "kat_Geor", "kab": "kab_Latn", "kk": "kaz_Cyrl",
    "km": "khm_Khmr", "kn": "kan_Knda", "ko": "kor_Hang", "ky": "kir_Cyrl", "lt": "lit_Latn",
    "lv": "lvs_Latn", "mk": "mkd_Cyrl", "ml": "mal_Mlym", "mr": "mar_Deva", "ms": "zsm_Latn",
    "mt": "mlt_Latn", "my": "mya_Mymr", "nb": "nob_Latn", "ne": "npi_Deva", "nl": "nld_Latn",
    "nn": "nno_Latn", "oc": "oci_Latn", "or": "ory_Orya", "pa": "pan_Guru", "pl": "pol_Latn",
    "ps": "pbt_Arab", "pt": "por_Latn", "pt_BR": "por_Latn", "ro": "ron_Latn", "ru": "rus_Cyrl",
    "si": "sin_Sinh", "sk": "slk_Latn", "sl": "slv_Latn", "sq": "als_Latn", "sr": "srp_Cyrl",
    "sv": "swe_Latn", "sw": "swh_Latn", "ta": "tam_Taml", "te": "tel_Telu", "tg": "tgk_Cyrl",
    "th": "tha_Thai", "tk": "tuk_Latn", "tr": "tur_Latn", "ug": "uig_Arab", "uk": "ukr_Cyrl",
    "ur": "urd_Arab", "uz": "uzn_Latn", "vi": "vie_Latn", "wa": None, "xh": "xho_Latn",
    "zh_CN": "zho_Hans", "zh_HK": "yue_Hant", "zh_TW": "zho_Hant", "zu": "zul_Latn",
}
# When two locales map to one code (pt and pt_BR), the first in this order wins per source text.
PREFERRED = ["pt", "pt_BR"]

PLACEHOLDER = re.compile(
    r"%(?:\d+\$)?(?:\([A-Za-z_][A-Za-z0-9_]*\))?[-+ #0']*(?:\*|\d+)?(?:\.(?:\*|\d+))?"
    r"(?:hh|h|ll|l|L|q|j|z|t|I64|I32|I)?[diouxXeEfFgGaAcspnm%]"
    r"|\{[A-Za-z0-9_]*\}|\$\{[A-Za-z0-9_]+\}|\$[A-Z_][A-Z0-9_]*")
MARKUP = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>|&[A-Za-z]+;|&#\d+;")


def read_mo(path):
    """Yields (msgid, msgstr) byte pairs of a compiled gettext catalog."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 28:
        return
    magic = struct.unpack("<I", data[:4])[0]
    order = "<" if magic == 0x950412DE else ">" if magic == 0xDE120495 else None
    if order is None:
        return
    _, count, orig_off, trans_off = struct.unpack(order + "4I", data[4:20])
    for i in range(count):
        olen, opos = struct.unpack(order + "2I", data[orig_off + 8 * i: orig_off + 8 * i + 8])
        tlen, tpos = struct.unpack(order + "2I", data[trans_off + 8 * i: trans_off + 8 * i + 8])
        yield data[opos: opos + olen], data[tpos: tpos + tlen]


def charset_of(header):
    m = re.search(rb"charset=([A-Za-z0-9_\-]+)", header)
    return m.group(1).decode("ascii") if m else "utf-8"


def same_tokens(pattern, a, b):
    return sorted(pattern.findall(a)) == sorted(pattern.findall(b))


def catalog_pairs(path, max_chars):
    entries = list(read_mo(path))
    charset = "utf-8"
    for msgid, msgstr in entries:
        if msgid == b"":
            charset = charset_of(msgstr)
    for msgid, msgstr in entries:
        if msgid == b"" or b"\x04" in msgid or b"\x00" in msgid or b"\x00" in msgstr:
            continue  # header, context, plural forms
        try:
            src = msgid.decode("utf-8")
            tgt = msgstr.decode(charset)
        except (UnicodeDecodeError, LookupError):
            continue
        if not tgt.strip() or not src.strip() or tgt == src:
            continue
        if len(src) > max_chars or len(tgt) > max_chars:
            continue
        if not same_tokens(PLACEHOLDER, src, tgt) or not same_tokens(MARKUP, src, tgt):
            continue
        yield src, tgt


def split_of(src):
    h = int.from_bytes(hashlib.sha256(src.encode("utf-8")).digest()[:8], "big") % 100
    return "test" if h < 2 else "dev" if h < 4 else "train"


def build(locale_dir, max_chars):
    """{flores_code: {src: Counter(tgt)}} and {(code, src): origin}."""
    table = collections.defaultdict(lambda: collections.defaultdict(collections.Counter))
    origin = {}
    locales = sorted(os.listdir(locale_dir), key=lambda l: (PREFERRED.index(l) if l in PREFERRED else -1, l))
    for loc in locales:
        code = LOCALES.get(loc)
        if code is None:
            continue
        for mo in sorted(glob.glob(os.path.join(locale_dir, loc, "LC_MESSAGES", "*.mo"))):
            domain = os.path.splitext(os.path.basename(mo))[0]
            if domain.startswith("iso_"):
                continue  # iso-codes: names of countries and languages, not sentences
            for src, tgt in catalog_pairs(mo, max_chars):
                table[code][src][tgt] += 1
                origin.setdefault((code, src, tgt), domain)
    return table, origin


def records(table, origin):
    out = []
    for code in sorted(table):
        for src in sorted(table[code]):
            counts = table[code][src]
            tgt = min(counts, key=lambda t: (-counts[t], t))
            out.append({"src": src, "tgt": tgt, "src_lang": "eng_Latn", "tgt_lang": code,
                        "origin": origin[(code, src, tgt)]})
    return out


def write_jsonl(path, recs):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for r in recs:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--locale-dir", default="/usr/share/locale")
    ap.add_argument("--out", help="directory for the full corpus: train/dev/test.jsonl")
    ap.add_argument("--sample", help="directory for the small committed sample")
    ap.add_argument("--max-chars", type=int, default=300)
    ap.add_argument("--sample-deu", type=int, default=2000, help="eng->deu pairs in the sample")
    ap.add_argument("--sample-other", type=int, default=60, help="pairs per other sample language")
    args = ap.parse_args()
    if not args.out and not args.sample:
        ap.error("give --out and/or --sample")
    table, origin = build(args.locale_dir, args.max_chars)
    recs = records(table, origin)
    splits = {"train": [], "dev": [], "test": []}
    for r in recs:
        splits[split_of(r["src"])].append(r)
    for name, rs in splits.items():
        langs = collections.Counter(r["tgt_lang"] for r in rs)
        print(f"{name}: {len(rs)} pairs, {len(langs)} languages "
              f"(deu_Latn {langs.get('deu_Latn', 0)})", file=sys.stderr)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        for name, rs in splits.items():
            write_jsonl(os.path.join(args.out, f"{name}.jsonl"), rs)
    if args.sample:
        os.makedirs(args.sample, exist_ok=True)
        other = ["fra_Latn", "spa_Latn", "rus_Cyrl", "jpn_Jpan", "zho_Hans"]

        def pick(rs, code, n):
            # Short, single-line messages read best in a sample; the order is the hash order.
            rs = [r for r in rs if r["tgt_lang"] == code and "\n" not in r["src"] and len(r["src"]) <= 120]
            rs.sort(key=lambda r: hashlib.sha256(r["src"].encode("utf-8")).hexdigest())
            return rs[:n]

        for name, scale in (("train", 1), ("dev", 10)):
            rs = pick(splits[name], "deu_Latn", args.sample_deu // scale)
            for code in other:
                rs += pick(splits[name], code, max(1, args.sample_other // scale))
            rs.sort(key=lambda r: hashlib.sha256((r["tgt_lang"] + r["src"]).encode("utf-8")).hexdigest())
            write_jsonl(os.path.join(args.sample, f"{name}.sample.jsonl"), rs)
            print(f"sample {name}: {len(rs)} pairs", file=sys.stderr)


if __name__ == "__main__":
    main()
