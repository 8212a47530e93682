//! Readings (読み) for search: how a title or a name sounds, so that a patron who types
//! なつめそうせき, ナツメソーセキ, natsume souseki or natume soseki finds 夏目漱石.
//!
//! Two pure steps, used alike on the indexed readings and on the query:
//! - [`romaji_to_kana`]: a term written in Latin letters that spells Japanese in Hepburn or
//!   Kunrei-shiki (with or without long vowels; `shimbun` and `shinbun`) becomes hiragana,
//!   by `wana_kana` (a maintained port of WanaKana); anything else (`history`) is not a
//!   reading and stays a word;
//! - [`reading_key`]: hiragana with the differences people do not hear or do not type
//!   folded away: the long vowels romaji drops (`そう`, `そお`, `そー` → `そ`, `ゆう` → `ゆ`; a
//!   romanised `ō` has already lost its macron), ぢ/づ → じ/ず, を → お, and no spaces (a reading written `なつめ そうせき` and one
//!   written `なつめそうせき` are one).
//!
//! And one for records: [`romanised_reading`] turns a Library of Congress romanisation
//! (ALA-LC: `Natsume Sōseki shū`, macrons for long vowels) into the reading it spells
//! (`なつめ そうせき しゅう`).

use wana_kana::ConvertJapanese;

use super::text::normalize;

/// A Latin-letter term as hiragana, when every letter of it is romaji (`natsume` →
/// `なつめ`, `natume` → `なつめ`, `shimbun` → `しんぶん`); `None` for anything else (`history`,
/// a term with digits, a single letter). Expects a term of [`normalize`]d text (lowercase,
/// macrons already stripped).
pub fn romaji_to_kana(term: &str) -> Option<String> {
    if term.chars().count() < 2 || !term.chars().all(|c| c.is_ascii_lowercase() || c == '\'') {
        return None;
    }
    // Hepburn writes ん as m before b, m and p (shimbun, Namba); WanaKana reads only n.
    let mut spelled = String::with_capacity(term.len());
    let chars: Vec<char> = term.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let before_labial = matches!(chars.get(i + 1), Some('b' | 'm' | 'p'));
        let after_vowel = i > 0 && matches!(chars[i - 1], 'a' | 'i' | 'u' | 'e' | 'o');
        if c == 'm' && before_labial && after_vowel {
            spelled.push('n');
        } else {
            spelled.push(c);
        }
    }
    // "n'" marks ん before a vowel or y (Shin'ya); WanaKana reads it so.
    let kana = spelled.to_hiragana().replace('\'', "");
    kana.chars().all(is_hiragana).then_some(kana)
}

/// The form a reading is compared in: hiragana, long vowels folded, no spaces. Expects
/// [`normalize`]d text (katakana already hiragana); characters other than kana pass through.
pub fn reading_key(reading: &str) -> String {
    let mut out: Vec<char> = Vec::with_capacity(reading.len());
    for c in reading.chars() {
        let c = match c {
            'ぢ' => 'じ',
            'づ' => 'ず',
            'を' => 'お',
            ' ' | '・' | '=' | '-' => continue,
            'ー' | '~' => continue,
            other => other,
        };
        if let (Some(&prev), Some(v)) = (out.last(), vowel_kana(c))
            && matches!(
                (vowel_of(prev), v),
                (Some('お'), 'う' | 'お') | (Some('う'), 'う')
            )
        {
            // The long vowels romaji drops (ō, ū written o, u): そう, とお, ゆう. Not い after
            // an i-row kana, which as often begins the next word (ひぐち|いちよう).
            continue;
        }
        out.push(c);
    }
    out.into_iter().collect()
}

/// The reading an ALA-LC romanisation of Japanese spells, in hiragana with its words apart
/// (`Natsume Sōseki shū` → `なつめ そうせき しゅう`); `None` when a word is not romaji (an
/// English title, a number, a Western name).
pub fn romanised_reading(romanised: &str) -> Option<String> {
    // Long vowels first, while the macrons are there: ō is おう (or おお), ū うう.
    let lengthened: String = romanised
        .chars()
        .flat_map(|c| match c {
            'ā' | 'Ā' => vec!['a', 'a'],
            'ī' | 'Ī' => vec!['i', 'i'],
            'ū' | 'Ū' => vec!['u', 'u'],
            'ē' | 'Ē' => vec!['e', 'e'],
            'ō' | 'Ō' | 'ô' | 'Ô' => vec!['o', 'u'],
            other => vec![other],
        })
        .collect();
    let text = normalize(&lengthened);
    let mut words = Vec::new();
    for word in text.split(|c: char| !(c.is_ascii_lowercase() || c == '\'')) {
        if word.is_empty() || word == "'" {
            continue;
        }
        // A particle or a one-letter word (o, e, wa) is part of the reading.
        let kana = if word.len() == 1 {
            match word {
                "o" => "お".to_owned(),
                "e" => "え".to_owned(),
                "a" => "あ".to_owned(),
                "i" => "い".to_owned(),
                "u" => "う".to_owned(),
                _ => return None,
            }
        } else {
            romaji_to_kana(word)?
        };
        words.push(kana);
    }
    (!words.is_empty()).then(|| words.join(" "))
}

/// Whether a text is a reading already: kana (and the long-vowel mark, spaces and middle
/// dots) only, with at least one kana.
pub fn is_kana_text(s: &str) -> bool {
    s.chars().any(is_kana_char)
        && s.chars()
            .all(|c| is_kana_char(c) || matches!(c, ' ' | '・' | 'ー' | '　' | '゠' | '='))
}

fn is_kana_char(c: char) -> bool {
    matches!(c, '\u{3041}'..='\u{309F}' | '\u{30A1}'..='\u{30FA}' | '\u{30FD}'..='\u{30FF}' | '\u{FF66}'..='\u{FF9F}')
}

fn is_hiragana(c: char) -> bool {
    matches!(c, '\u{3041}'..='\u{3096}' | 'ー')
}

/// The vowel kana あいうえお itself, for a vowel that may lengthen the kana before it.
fn vowel_kana(c: char) -> Option<char> {
    matches!(c, 'あ' | 'い' | 'う' | 'え' | 'お').then_some(c)
}

/// The vowel a hiragana ends in (ゃゅょ included: しゅう → しゅ), `None` for ん, っ and
/// anything else.
fn vowel_of(c: char) -> Option<char> {
    const ROWS: [(&str, char); 5] = [
        ("あかさたなはまやらわがざだばぱぁゃゎ", 'あ'),
        ("いきしちにひみりぎじぢびぴぃゐ", 'い'),
        ("うくすつぬふむゆるぐずづぶぷぅゅゔ", 'う'),
        ("えけせてねへめれげぜでべぺぇゑ", 'え'),
        ("おこそとのほもよろをごぞどぼぽぉょ", 'お'),
    ];
    ROWS.iter()
        .find(|(row, _)| row.contains(c))
        .map(|&(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of_romaji(q: &str) -> Option<String> {
        romaji_to_kana(&normalize(q)).map(|k| reading_key(&k))
    }

    #[test]
    fn hepburn_and_kunrei_with_or_without_long_vowels_give_one_key() {
        let want = reading_key("なつめそうせき");
        assert_eq!(want, "なつめそせき");
        for q in [
            "natsumesouseki",
            "natsumesoseki",
            "natumesoseki",
            "natumesouseki",
        ] {
            assert_eq!(key_of_romaji(q).as_deref(), Some(want.as_str()), "{q}");
        }
        assert_eq!(key_of_romaji("syuu"), key_of_romaji("shuu"));
        assert_eq!(key_of_romaji("tizu"), key_of_romaji("chizu"));
        assert_eq!(key_of_romaji("huzi"), key_of_romaji("fuji"));
        assert_eq!(key_of_romaji("zyouhou"), key_of_romaji("jouhou"));
        assert_eq!(key_of_romaji("shimbun"), key_of_romaji("shinbun"));
        assert_eq!(key_of_romaji("tokyo"), key_of_romaji("toukyou"));
        assert_eq!(key_of_romaji("shin'ya").as_deref(), Some("しんや"));
    }

    #[test]
    fn kana_in_any_script_and_long_vowel_spelling_give_one_key() {
        let want = reading_key(&normalize("なつめそうせき"));
        for q in [
            "ナツメソウセキ",
            "ﾅﾂﾒｿｳｾｷ",
            "ナツメソーセキ",
            "なつめ そおせき",
        ] {
            assert_eq!(reading_key(&normalize(q)), want, "{q}");
        }
        assert_eq!(reading_key("あんのあいじょう"), "あんのあいじょ");
        assert_eq!(reading_key("にしきえ"), "にしきえ");
        assert_eq!(reading_key("はなぢ"), reading_key("はなじ"));
    }

    #[test]
    fn words_that_are_not_romaji_are_not_readings() {
        for q in ["history", "matrix", "prml", "x", "2024", "natsume2"] {
            assert_eq!(romaji_to_kana(q), None, "{q}");
        }
        assert_eq!(romaji_to_kana("kokoro").as_deref(), Some("こころ"));
    }

    #[test]
    fn an_ala_lc_romanisation_spells_its_reading() {
        assert_eq!(
            romanised_reading("Natsume Sōseki shū").as_deref(),
            Some("なつめ そうせき しゅう")
        );
        assert_eq!(
            romanised_reading("Nihon no rekishi : Edo jidai").as_deref(),
            Some("にほん の れきし えど じだい")
        );
        assert_eq!(romanised_reading("Anne of Green Gables"), None);
        assert_eq!(romanised_reading("1984"), None);
    }

    #[test]
    fn kana_text_is_recognised() {
        assert!(is_kana_text("ナツメ ソウセキ"));
        assert!(is_kana_text("あんのあいじょう"));
        assert!(!is_kana_text("夏目漱石"));
        assert!(!is_kana_text("Natsume"));
        assert!(!is_kana_text("ー"));
    }
}
