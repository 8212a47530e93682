//! Japanese-aware text normalisation for search.
//!
//! Titles, readings and names reach the catalog in many spellings of the same thing:
//! full-width `ＰＲＭＬ` and half-width `PRML`, half-width katakana `ｺｺﾛ`, katakana `ココロ` and
//! hiragana `こころ`, 﨑 beside 崎, five kinds of dash. Search must not care, so both the indexed
//! text and the query go through [`normalize`], which folds those differences away. It is a
//! pure function and idempotent (`normalize(normalize(x)) == normalize(x)`), which is what lets
//! the index and the query side agree.
//!
//! What it deliberately does not do: remove spaces between Japanese words, collapse repeated
//! `ー`, drop tildes, enlarge small kana other than ヵ/ヶ, or romanise. Those change what a
//! patron typed into something else, and a substring search does not need them.

use unicode_normalization::UnicodeNormalization;

/// Unicode NFKC, the first folding step of [`normalize`].
///
/// Exposed so that the Unicode conformance vectors can check this step on its own.
pub fn nfkc(s: &str) -> String {
    s.nfkc().collect()
}

/// Normalises text for indexing and for queries.
///
/// Steps, in order:
/// 1. drop invisible format characters (soft hyphen, zero-width space, word joiner, BOM) and
///    turn the spacing sound marks ゛゜ into their combining forms, so that `う゛` composes to `ゔ`;
/// 2. NFKC: folds full-width and half-width forms (`Ａ`→`A`, `ｺｺﾛ`→`ココロ`, `ﾊﾟ`→`パ`);
/// 3. lowercase, old and variant kanji to their Jōyō form ([`fold_variant`]: 國→国, 﨑→崎, 髙→高,
///    嶋→島, 邊/邉→辺, 澤→沢, 齋→斎, 齊→斉, 濱/濵→浜), katakana→hiragana (ヴ→ゔ, small kana stay small except ヵ/ヶ→か/け),
///    wave dashes (〜, 〰, ∼, ～) → `~`; then NFKC again so that the result stays composed;
/// 4. dashes: a short hyphen after kana stands for the prolonged sound mark and becomes `ー`
///    (`デ－タ` is a common mistyping of `データ`), elsewhere each run of hyphens becomes one
///    `-`; each run of long dashes (`―`, `—`, `─`, `――`) becomes one `—`;
/// 5. every run of whitespace becomes one ASCII space, and the ends are trimmed.
pub fn normalize(s: &str) -> String {
    // Stripping Latin marks can expose a letter that folds again (`İ` → `I` → `i`): repeat
    // the pass until nothing changes, so that normalising twice equals normalising once.
    let mut current = normalize_pass(&strip_latin_marks(s));
    for _ in 0..4 {
        let next = normalize_pass(&strip_latin_marks(&current));
        if next == current {
            break;
        }
        current = next;
    }
    current
}

fn normalize_pass(s: &str) -> String {
    let prepared: String = s.chars().filter_map(prepare_char).collect();
    let mut folded = String::with_capacity(prepared.len());
    for c in prepared.nfkc() {
        fold_char(c, &mut folded);
    }
    // Lowercasing or kana folding can leave a base and a combining mark that compose (`J̌` →
    // `ǰ`); without this second pass a second call of `normalize` would change the text.
    let composed: String = folded.nfkc().collect();
    collapse_dashes_and_spaces(&composed)
}

/// Romanised readings carry macrons and accents (`Dentō`, `Kōdan`) that people do not
/// type: accented Latin letters lose their marks so that `dento` finds `Dentō`. Kana keep
/// their voicing marks (が is not か).
fn strip_latin_marks(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let latin = matches!(c, '\u{00C0}'..='\u{024F}' | '\u{1E00}'..='\u{1EFF}');
            let mut out: Vec<char> = Vec::new();
            if latin {
                out.extend(
                    std::iter::once(c)
                        .nfd()
                        .filter(|m| !('\u{0300}'..='\u{036F}').contains(m)),
                );
            } else {
                out.push(c);
            }
            out
        })
        .collect()
}

/// Step 1: characters that must change before NFKC sees them.
fn prepare_char(c: char) -> Option<char> {
    match c {
        // Invisible, and would otherwise split a word (or a base from its combining mark).
        '\u{00AD}' | '\u{200B}' | '\u{2060}' | '\u{FEFF}' => None,
        // NFKC turns the spacing marks into "space + combining mark", which never composes
        // with the kana before it; the combining form does.
        '\u{309B}' => Some('\u{3099}'),
        '\u{309C}' => Some('\u{309A}'),
        other => Some(other),
    }
}

/// Step 3 for one character of the NFKC text.
fn fold_char(c: char, out: &mut String) {
    let c = lowercase(c);
    let c = fold_variant(c);
    match c {
        // ヷヸヹヺ have no precomposed hiragana: spell them as kana + combining voiced mark.
        '\u{30F7}'..='\u{30FA}' => {
            out.push(match c {
                '\u{30F7}' => 'わ',
                '\u{30F8}' => 'ゐ',
                '\u{30F9}' => 'ゑ',
                _ => 'を',
            });
            out.push('\u{3099}');
        }
        // 〜 〰 ∼ (and ～, which NFKC has already made `~`) are one wave dash to a searcher.
        '\u{301C}' | '\u{3030}' | '\u{223C}' => out.push('~'),
        _ => out.push(kana_to_hiragana(c)),
    }
}

/// Lowercases a character when that gives exactly one character.
///
/// The few characters whose lowercase is longer (`İ`) are kept, so one character of input
/// never turns into a sequence that the next NFKC pass would recompose differently.
fn lowercase(c: char) -> char {
    if !c.is_uppercase() {
        return c;
    }
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

/// The variant table [`fold_variant`] folds with: `(variant, Jōyō form)`, sorted.
pub fn variant_table() -> &'static [(char, char)] {
    super::variants_table::FOLD
}

/// A kanji's old or variant form that NFKC leaves alone folds to its Jōyō form (國→国,
/// 澤→沢, 說→説, 﨑→崎, 髙→高): patrons do not distinguish them when searching, and records
/// write either. The table is generated from Unihan's variant fields and KANJIDIC2
/// (`scripts/gen-variants.py`, which holds the rule); a Jōyō kanji never folds, so this is
/// one step and idempotent.
pub fn fold_variant(c: char) -> char {
    if (c as u32) < 0x3400 {
        return c;
    }
    match super::variants_table::FOLD.binary_search_by_key(&c, |&(from, _)| from) {
        Ok(i) => super::variants_table::FOLD[i].1,
        Err(_) => c,
    }
}

/// Katakana → hiragana for one character; anything else is returned unchanged.
fn kana_to_hiragana(c: char) -> char {
    match c {
        // Small ヵ/ヶ (and ゕ/ゖ) are read か/が/け in 一ヵ月, 霞ヶ関 and are written large just as
        // often (霞ケ関), so they fold to the large kana. Other small kana (ゃ, っ) change the
        // word and stay small.
        '\u{30F5}' | '\u{3095}' => 'か',
        '\u{30F6}' | '\u{3096}' => 'け',
        // ァ..ヴ sit exactly 0x60 above ぁ..ゔ.
        '\u{30A1}'..='\u{30F4}' | '\u{30FD}' | '\u{30FE}' => {
            char::from_u32(u32::from(c) - 0x60).unwrap_or(c)
        }
        other => other,
    }
}

/// Short dashes and hyphens, after NFKC (so `－`, `﹣`, `₋`, `⁻` have already become `-` or
/// `−`). These are what a prolonged sound mark gets mistyped as.
fn is_hyphen(c: char) -> bool {
    matches!(
        c,
        '-' | '\u{02D7}' | '\u{058A}' | '\u{2010}'..='\u{2013}' | '\u{2043}' | '\u{2212}'
    )
}

/// Long dashes (`—`, `―`, box-drawing lines), used doubled (`――`) as the Japanese dash
/// between a title and what follows.
fn is_long_dash(c: char) -> bool {
    matches!(
        c,
        '\u{2014}' | '\u{2015}' | '\u{2500}' | '\u{2501}' | '\u{2E3A}' | '\u{2E3B}'
    )
}

/// Kana, the prolonged sound mark and the combining sound marks: after one of these a dash is
/// a prolonged sound mark, not punctuation.
fn is_kana(c: char) -> bool {
    matches!(
        c,
        '\u{3041}'..='\u{309F}' | '\u{30A1}'..='\u{30FA}' | '\u{30FC}'..='\u{30FF}' | '\u{31F0}'..='\u{31FF}'
    )
}

/// Steps 4 and 5.
fn collapse_dashes_and_spaces(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        let prev = out.chars().next_back();
        if is_hyphen(c) {
            match prev {
                Some(p) if is_kana(p) => out.push('ー'),
                // A run of hyphens is one hyphen.
                Some('-') => {}
                _ => out.push('-'),
            }
            continue;
        }
        if is_long_dash(c) {
            // Never a prolonged sound mark: `である――夏目漱石` is a title and its author.
            // Kept apart from `-` because a `-` after kana would become `ー` when normalised
            // again.
            if prev != Some('—') {
                out.push('—');
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// A kanji (the CJK ideograph blocks, compatibility ideographs, the supplementary planes)
/// or the kanji marks 々 and 〆: what record mapping and name display call a kanji.
pub fn is_han(c: char) -> bool {
    matches!(c,
        '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{3FFFF}'
        | '々' | '〆')
}

#[cfg(test)]
mod tests {
    #[test]
    fn latin_marks_of_romanised_readings_are_dropped_but_kana_voicing_kept() {
        assert_eq!(super::normalize("Dentō wagei Kōdan"), "dento wagei kodan");
        assert_eq!(super::normalize("İstanbul"), "istanbul");
        assert_ne!(super::normalize("が"), super::normalize("か"));
    }

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn kana_scripts_and_widths_fold_to_hiragana() {
        assert_eq!(normalize("こころ"), "こころ");
        assert_eq!(normalize("ココロ"), "こころ");
        assert_eq!(normalize("ｺｺﾛ"), "こころ");
        assert_eq!(normalize("ﾊﾟﾊﾟ"), "ぱぱ");
        assert_eq!(normalize("ｳﾞｧｲｵﾘﾝ"), "ゔぁいおりん");
    }

    #[test]
    fn vu_and_small_kana_keep_their_identity() {
        assert_eq!(normalize("ヴ"), "ゔ");
        assert_eq!(normalize("キャット"), "きゃっと");
        assert_ne!(normalize("キャ"), normalize("キヤ"));
        assert_eq!(normalize("ヷ"), "わ\u{3099}");
    }

    #[test]
    fn small_ka_and_ke_fold_to_large_as_in_place_names() {
        assert_eq!(normalize("霞ヶ関"), normalize("霞ケ関"));
        assert_eq!(normalize("一ヵ月"), normalize("一カ月"));
    }

    #[test]
    fn prolonged_sound_mark_is_kept() {
        assert_eq!(normalize("スーパー"), "すーぱー");
        assert_eq!(normalize("ｽｰﾊﾟｰ"), "すーぱー");
    }

    #[test]
    fn spacing_sound_marks_compose_with_the_kana_before_them() {
        assert_eq!(normalize("う゛ほﾟ"), "ゔぽ");
        assert_eq!(normalize("か゛"), "が");
    }

    #[test]
    fn ascii_is_lowercased_and_full_width_folded() {
        assert_eq!(normalize("ＰＲＭＬ"), "prml");
        assert_eq!(normalize("Coding the Matrix"), "coding the matrix");
        assert_eq!(normalize("１２３"), "123");
    }

    #[test]
    fn old_and_variant_kanji_fold_to_the_joyo_form() {
        assert_eq!(normalize("山\u{FA11}"), "山崎");
        assert_eq!(normalize("山嵜"), "山崎");
        assert_eq!(normalize("髙橋"), "高橋");
        assert_eq!(normalize("小嶋"), "小島");
        assert_eq!(normalize("渡邊"), "渡辺");
        assert_eq!(normalize("渡邉"), "渡辺");
        assert_eq!(normalize("澤田"), "沢田");
        assert_eq!(normalize("齋藤"), "斎藤");
        // 齊 is the old form of 斉, not of 斎 (斉藤 and 斎藤 are two spellings of the name).
        assert_eq!(normalize("齊藤"), "斉藤");
        assert_eq!(normalize("國學院"), "国学院");
        assert_eq!(normalize("序說"), "序説");
        assert_eq!(normalize("櫻の園"), "桜の園");
        assert_eq!(normalize("舊字體"), "旧字体");
    }

    #[test]
    fn joyo_kanji_never_fold() {
        // Unihan calls 埼 a semantic variant of 崎, and 寡 one of 關: both are Jōyō kanji of
        // their own.
        assert_eq!(normalize("埼玉"), "埼玉");
        assert_eq!(normalize("寡黙"), "寡黙");
        assert_eq!(normalize("関西"), "関西");
        for &(from, to) in super::super::variants_table::FOLD {
            assert_eq!(fold_variant(to), to, "{from} → {to} folds again");
            assert_ne!(from, to);
        }
    }

    #[test]
    fn the_fold_table_is_sorted_for_its_binary_search() {
        let table = super::super::variants_table::FOLD;
        assert!(table.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(table.iter().all(|&(from, _)| fold_variant(from) != from));
    }

    #[test]
    fn dashes_become_one_hyphen_outside_kana() {
        assert_eq!(normalize("a˗֊‐‑‒–⁃⁻₋−"), "a-");
        assert_eq!(normalize("o₋o"), "o-o");
        assert_eq!(
            normalize("吾輩は猫である――夏目漱石"),
            "吾輩は猫である—夏目漱石"
        );
        assert_eq!(normalize("a—―─━b"), "a—b");
        assert_eq!(normalize("A ˗あ"), "a -あ");
    }

    #[test]
    fn dashes_after_kana_are_prolonged_sound_marks() {
        assert_eq!(normalize("デ－タ"), normalize("データ"));
        assert_eq!(normalize("コンピュ-タ"), "こんぴゅーた");
    }

    #[test]
    fn wave_dashes_fold_to_tilde() {
        assert_eq!(normalize("1467〜1487年"), "1467~1487年");
        assert_eq!(normalize("A ～あ"), "a ~あ");
        assert_eq!(normalize("〰∼"), "~~");
    }

    #[test]
    fn whitespace_runs_collapse_and_trim() {
        assert_eq!(normalize("　　ＰＲＭＬ　　副読本\t\n"), "prml 副読本");
        assert_eq!(normalize("      おお"), "おお");
        assert_eq!(normalize(" \u{3000} "), "");
    }

    #[test]
    fn invisible_characters_are_dropped() {
        assert_eq!(normalize("こ\u{200B}ころ"), "こころ");
        assert_eq!(normalize("\u{FEFF}soft\u{00AD}ware"), "software");
    }

    #[test]
    fn every_single_character_normalises_idempotently() {
        // Exhaustive over the code space: cheap, and it catches a folding table entry whose
        // output another step would change again.
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            let once = normalize(c.encode_utf8(&mut [0; 4]));
            assert_eq!(normalize(&once), once, "U+{:04X}", u32::from(c));
        }
    }

    fn japanese_text() -> impl Strategy<Value = String> {
        // Kana, kanji, full/half width, dashes, spaces and combining marks: the characters
        // where the folding steps interact.
        prop::collection::vec(
            prop_oneof![
                prop::char::range('\u{3040}', '\u{30FF}'),
                prop::char::range('\u{FF00}', '\u{FFEF}'),
                prop::char::range('\u{4E00}', '\u{4E20}'),
                prop::sample::select(vec![
                    '-', '－', '—', '―', '─', '〜', '～', ' ', '\u{3000}', '\t', 'A', 'z', 'J',
                    '\u{030C}', '\u{0301}', '\u{3099}', '\u{309B}', '\u{200B}', '﨑', 'İ', 'ヷ',
                ]),
            ],
            0..24,
        )
        .prop_map(|cs| cs.into_iter().collect())
    }

    proptest! {
        #[test]
        fn normalize_is_idempotent_on_japanese_text(s in japanese_text()) {
            let once = normalize(&s);
            prop_assert_eq!(normalize(&once), once);
        }

        #[test]
        fn normalize_is_idempotent_on_any_text(s in any::<String>()) {
            let once = normalize(&s);
            prop_assert_eq!(normalize(&once), once);
        }

        #[test]
        fn ascii_letters_and_digits_ignore_width(s in "[A-Za-z0-9 ]{0,32}") {
            let full: String = s
                .chars()
                .map(|c| match c {
                    ' ' => '\u{3000}',
                    c => char::from_u32(u32::from(c) - 0x21 + 0xFF01).unwrap_or(c),
                })
                .collect();
            prop_assert_eq!(normalize(&full), normalize(&s));
        }

        #[test]
        fn katakana_and_hiragana_of_the_same_text_are_equal(
            s in prop::collection::vec(
                prop_oneof![
                    prop::char::range('\u{3041}', '\u{3096}'),
                    prop::sample::select(vec!['ゝ', 'ゞ', 'ー', '-', ' ', '山']),
                ],
                0..24,
            )
        ) {
            let hiragana: String = s.iter().collect();
            let katakana: String = s
                .iter()
                .map(|&c| match c {
                    '\u{3041}'..='\u{3096}' | 'ゝ' | 'ゞ' => {
                        char::from_u32(u32::from(c) + 0x60).unwrap_or(c)
                    }
                    c => c,
                })
                .collect();
            prop_assert_eq!(normalize(&katakana), normalize(&hiragana));
        }
    }
}
