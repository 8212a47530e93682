#!/usr/bin/env python3
"""Writes services/catalog/src/domain/variants_table.rs: the kanji that search folds to
another form (old to new: 國→国, 澤→沢, 說→説, 﨑→崎, 髙→高 …), derived from two
maintained tables that Debian ships, never written by hand:

- Unihan's variant fields (Debian `unicode-data`, /usr/share/unicode/Unihan_Variants.txt.bz2):
  kZVariant, kSemanticVariant, and kTraditionalVariant/kSimplifiedVariant where the
  pair is one to one;
- KANJIDIC2 (Debian `kanjidic-xml`, /usr/share/edict/kanjidic2.xml.gz, EDRDG, CC BY-SA 4.0):
  each kanji's variants (by JIS code) and its grade, which says which kanji are Jōyō
  (grades 1–8).

The rule (what a Japanese reader calls the same character): a kanji that is not Jōyō
folds to its one Jōyō variant, looked up first among KANJIDIC2's variants, then
kZVariant, then kSemanticVariant, then the one-to-one simplified form; where a step
offers two Jōyō candidates (unless only one of them is cited as the same character,
kSemanticVariant's T or Z) or none, the next step decides; after the last, the kanji
stays as it is. A Jōyō kanji never folds
(埼 stays 埼 though Unihan calls it a semantic variant of 崎; 寡 is not 關), so the folding
is one step and idempotent.

Usage: scripts/gen-variants.py [UNIHAN_VARIANTS KANJIDIC2] > variants_table.rs
The suite checks that the committed table is what this prints
(services/catalog/tests/variants_table.rs).
"""

import bz2
import collections
import gzip
import re
import sys

UNIHAN = "/usr/share/unicode/Unihan_Variants.txt.bz2"
KANJIDIC = "/usr/share/edict/kanjidic2.xml.gz"


def code_point(token):
    return chr(int(token.split("<")[0][2:], 16))


def unihan(path):
    fields = collections.defaultdict(lambda: collections.defaultdict(list))
    version = None
    with bz2.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.startswith("# Unicode version:"):
                version = line.split(":", 1)[1].strip()
            if line.startswith("#") or not line.strip():
                continue
            c, field, values = line.rstrip("\n").split("\t")
            for v in values.split():
                fields[field][code_point(c)].append(code_point(v))
                # A citation typed T (the same character) or Z (the preferred form).
                if re.search(r":[A-Z]*[TZ]", v):
                    fields[field + ":same"][code_point(c)].append(code_point(v))
    return fields, version


def kanjidic(path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        text = f.read()
    version = re.search(r"<date_of_creation>(.*?)</date_of_creation>", text)
    by_jis, grade, variants = {}, {}, {}
    for entry in re.findall(r"<character>(.*?)</character>", text, re.S):
        literal = re.search(r"<literal>(.*?)</literal>", entry).group(1)
        for kind, code in re.findall(
            r'<cp_value cp_type="(jis208|jis212|jis213)">(.*?)</cp_value>', entry
        ):
            by_jis[(kind, code)] = literal
        g = re.search(r"<grade>(\d+)</grade>", entry)
        if g:
            grade[literal] = int(g.group(1))
        variants[literal] = re.findall(
            r'<variant var_type="(jis208|jis212|jis213)">(.*?)</variant>', entry
        )
    resolved = {
        lit: [by_jis[v] for v in vs if v in by_jis and by_jis[v] != lit]
        for lit, vs in variants.items()
    }
    return resolved, grade, version.group(1) if version else "?"


def table(unihan_path, kanjidic_path):
    fields, unihan_version = unihan(unihan_path)
    kd_variants, grade, kd_version = kanjidic(kanjidic_path)

    def joyo(c):
        return 1 <= grade.get(c, 0) <= 8

    def one_to_one_simplified(c):
        simp = set(fields["kSimplifiedVariant"].get(c, [])) - {c}
        if len(simp) != 1:
            return []
        s = next(iter(simp))
        back = set(fields["kTraditionalVariant"].get(s, [])) - {s}
        return [s] if back == {c} else []

    def semantic(c):
        return fields["kSemanticVariant"].get(c, [])

    steps = [
        lambda c: kd_variants.get(c, []),
        lambda c: fields["kZVariant"].get(c, []),
        semantic,
        one_to_one_simplified,
    ]
    chars = set(grade) | set(kd_variants)
    for f in ("kZVariant", "kSemanticVariant", "kSimplifiedVariant"):
        # (":same" lists are subsets of these.)
        chars |= set(fields[f])
    fold = {}
    for c in sorted(chars):
        if joyo(c):
            continue
        for step in steps:
            targets = sorted({t for t in step(c) if t != c and joyo(t)})
            if len(targets) > 1 and step is semantic:
                # 﨑 has two Jōyō semantic variants, 崎 and 埼; only 崎 is cited as the
                # same character (kMorohashi:Z).
                same = set(fields["kSemanticVariant:same"].get(c, []))
                targets = [t for t in targets if t in same]
            if len(targets) == 1:
                fold[c] = targets[0]
                break
    return fold, unihan_version, kd_version


def main():
    paths = sys.argv[1:3] if len(sys.argv) >= 3 else [UNIHAN, KANJIDIC]
    fold, unihan_version, kd_version = table(*paths)
    out = sys.stdout
    out.write("//! Generated by `scripts/gen-variants.py` (do not edit): the kanji that search folds\n")
    out.write("//! to their Jōyō form, from Unihan's variant fields (Unicode %s, Debian\n" % unihan_version)
    out.write("//! `unicode-data`; Unicode License v3) and KANJIDIC2 (%s, Debian `kanjidic-xml`;\n" % kd_version)
    out.write("//! © EDRDG, CC BY-SA 4.0, so this table is under that licence too). The rule is in\n")
    out.write("//! the script; the suite checks that this file is what it prints.\n\n")
    out.write("/// `(variant, Jōyō form)`, sorted by the variant: a binary search finds a kanji.\n")
    out.write("pub(super) const FOLD: &[(char, char)] = &[\n")
    for c, t in sorted(fold.items()):
        out.write("    ('%s', '%s'), // U+%04X → U+%04X\n" % (c, t, ord(c), ord(t)))
    out.write("];\n")


if __name__ == "__main__":
    main()
