//! Names as people write them (issue 10): the one place that decides how a title's
//! creators are displayed on pages and in mails — 「松下幸子 著」,
//! 「モンゴメリ 著；掛川恭子 訳」, "by Lucy Maud Montgomery".
//!
//! The source is the statement of responsibility where the record has one (245 $c, the
//! NDL's 責任表示), which spells names as printed and carries their roles; otherwise the
//! author headings (`松下, 幸子`, `Montgomery, Lucy Maud ; 掛川, 恭子`), which carry no role,
//! so none is shown. Cataloguing conventions are undone: ISBD punctuation, the square
//! brackets of supplied words, the comma of an inverted heading, the dates of a heading,
//! the space cataloguers put between a Japanese family and given name, and the Library of
//! Congress habit of writing the role against the name (`池田昭著`) or before it
//! (`監修石毛直道`). A Western statement is kept as written.

/// The creators of a title as pages and mails show them, or an empty string when the
/// title has neither a statement nor a heading. `responsibility` is the statement of
/// responsibility as recorded; `author` the heading or headings (`;`-separated).
pub fn creators(responsibility: &str, author: &str) -> String {
    let from_statement = from_statements(responsibility);
    if !from_statement.is_empty() {
        return from_statement;
    }
    from_headings(author)
}

/// Roles a Japanese statement names after a space (`モンゴメリ 作`), or as one part of a
/// compound role (`編集・企画`). 「文」 alone is left out: it is also a given name
/// (幸田 文), and a name is worse to lose than a role.
const ROLES: &[&str] = &[
    "著",
    "編",
    "訳",
    "作",
    "絵",
    "画",
    "え",
    "写真",
    "撮影",
    "著者",
    "編者",
    "訳者",
    "作者",
    "編著",
    "共著",
    "共編",
    "共訳",
    "編集",
    "責任編集",
    "編集委員",
    "編集代表",
    "編集協力",
    "監修",
    "総監修",
    "監訳",
    "編訳",
    "翻訳",
    "訳注",
    "訳註",
    "校注",
    "校註",
    "校訂",
    "校閲",
    "注",
    "註",
    "注釈",
    "解説",
    "解說",
    "編解説",
    "編解說",
    "原作",
    "原著",
    "原案",
    "作画",
    "脚本",
    "構成",
    "企画",
    "選",
    "撰",
    "編纂",
    "編述",
    "著述",
    "述",
    "口述",
    "談",
    "作詞",
    "作曲",
    "編曲",
    "協力",
    "指導",
    "イラスト",
    "漫画",
    "まんが",
    "マンガ",
    "装丁",
    "題字",
    "執筆",
    "主編",
    "監督",
    "演出",
    "朗読",
    "出演",
    "演奏",
    "指揮",
    "制作",
    "製作",
    "取材",
    "聞き手",
];

/// The part of a compound role that may be 「文」 (`絵・文`, `写真・文`).
const COMPOUND_ONLY_ROLES: &[&str] = &["文"];

/// Roles written against the name without a space (`池田昭著`, `小川正人編著`): only those
/// no Japanese name ends with (「作」 does: 江畑耕作).
const ATTACHED_ROLES: &[&str] = &[
    "著",
    "編",
    "訳",
    "編著",
    "共著",
    "共編",
    "共訳",
    "編訳",
    "監訳",
    "監修",
    "総監修",
    "編集",
    "責任編集",
    "訳注",
    "訳註",
    "校注",
    "校註",
    "校訂",
    "解説",
    "解說",
    "編解説",
    "編解說",
    "原作",
    "撮影",
    "作画",
    "脚本",
    "執筆",
    "翻訳",
    "編纂",
    "編述",
    "著述",
];

/// Roles that the Library of Congress transcribes before the name (`監修石毛直道`,
/// `[著者竹内理三]`), with the role word a statement after the name would use.
const LEADING_ROLES: &[(&str, &str)] = &[
    ("責任編集", "責任編集"),
    ("編集委員", "編集委員"),
    ("編集代表", "編集代表"),
    ("編集者", "編集"),
    ("編著者", "編著"),
    ("監修者", "監修"),
    ("執筆者", "執筆"),
    ("編集", "編集"),
    ("編著", "編著"),
    ("編者", "編"),
    ("著者", "著"),
    ("訳者", "訳"),
    ("監修", "監修"),
    ("執筆", "執筆"),
    ("解説", "解説"),
    ("解說", "解說"),
    ("翻訳", "翻訳"),
];

/// "And others": kept with the names it follows (`岩崎信彦ほか 編`).
const ET_AL: &[&str] = &["ほか", "他"];

fn from_statements(responsibility: &str) -> String {
    let text = collapse_spaces(responsibility);
    // ISBD: what follows " = " is the same statement in another language (parallel).
    let text = match text.split_once(" = ") {
        Some((first, _)) if !first.trim().is_empty() => first,
        _ => text.as_str(),
    };
    let japanese = text.chars().any(is_japanese);
    // "[et al.]" is the cataloguer's, in English; a Japanese statement says ほか.
    let text = if japanese {
        text.replace("... [et al.]", " ほか")
            .replace("...[et al.]", " ほか")
            .replace("[et al.]", " ほか")
    } else {
        text.to_string()
    };
    let text: String = text
        .chars()
        .filter(|c| !matches!(c, '[' | ']' | '［' | '］'))
        .collect();
    let statements: Vec<String> = split_statements(&text)
        .map(|s| {
            if s.chars().any(is_japanese) {
                japanese_statement(s)
            } else {
                trim_isbd(s).to_string()
            }
        })
        .filter(|s| !s.is_empty())
        .collect();
    join(&statements)
}

/// ISBD's ` ; ` (also without its spaces, and full width) and ` ／ ` separate statements.
fn split_statements(text: &str) -> impl Iterator<Item = &str> {
    text.split([';', '；', '／'])
        .flat_map(|s| s.split(" / "))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Japanese statements are joined with 「；」; Western ones as English writes a list.
fn join(parts: &[String]) -> String {
    let separator = if parts.iter().any(|p| p.chars().any(is_japanese)) {
        "；"
    } else {
        "; "
    };
    parts.join(separator)
}

/// One Japanese statement as `names role`.
fn japanese_statement(statement: &str) -> String {
    let statement = trim_isbd(statement);
    let (names, mut et_al, role) = match trailing_role(statement, true) {
        Some(found) => found,
        None => match leading_role(statement) {
            Some((names, role)) => (names, "", role),
            None => (statement, "", String::new()),
        },
    };
    // 「岩崎信彦 ほか 編」: the 「ほか」 is a word of its own before the role.
    let names = match split_et_al(names) {
        (names, "") => names,
        (names, e) => {
            et_al = e;
            names
        }
    };
    let names = format!("{}{et_al}", tidy_names(names));
    match (names.is_empty(), role.is_empty()) {
        (_, true) => names,
        (true, false) => role,
        (false, false) => format!("{names} {role}"),
    }
}

/// The role at the end of a statement: the last word when it is one (`松下 幸子 著`,
/// `及川良子 カリキュラム監修`), else, where `attached` allows, a role written against the
/// name (`池田昭著`, `沢田昭二ほか著`). Answers the names before it, the 「ほか」 that came
/// with the role (or empty), and the role.
fn trailing_role(statement: &str, attached: bool) -> Option<(&str, &'static str, String)> {
    if let Some((names, last)) = statement.rsplit_once(' ')
        && let Some((et_al, role)) = spaced_role(last)
    {
        return Some((names.trim_end(), et_al, role.to_string()));
    }
    if !attached {
        return None;
    }
    let role = ATTACHED_ROLES
        .iter()
        .filter(|r| statement.ends_with(**r))
        .max_by_key(|r| r.len())?;
    let mut names = &statement[..statement.len() - role.len()];
    let mut et_al = "";
    if let Some(e) = ET_AL.iter().find(|e| names.ends_with(**e)) {
        names = &names[..names.len() - e.len()];
        et_al = e;
    }
    let names = names.trim_end();
    // A name must be left, and end like a Japanese name (not `Tazawa編`, not `編集・`).
    names
        .chars()
        .next_back()
        .filter(|c| is_japanese(*c) && *c != '・')?;
    Some((names, et_al, role.to_string()))
}

/// A role word after a space: a role, a compound of roles (`編集・企画`), a role of two
/// characters or more qualified by a word in kana or Latin letters (`カリキュラム監修`), any of them after 「ほか」
/// (`他訳`). Answers (「ほか」 or empty, role).
fn spaced_role(word: &str) -> Option<(&'static str, &str)> {
    let (et_al, rest) = ET_AL
        .iter()
        .find_map(|e| word.strip_prefix(*e).map(|r| (*e, r)))
        .unwrap_or(("", word));
    if rest.is_empty() {
        return None;
    }
    let compound = rest.contains('・')
        && rest
            .split('・')
            .all(|p| ROLES.contains(&p) || COMPOUND_ONLY_ROLES.contains(&p));
    // `カリキュラム監修` is a role, `根城泰共著` a name with its role against it.
    let long_role_at_end = ROLES.iter().any(|r| {
        r.chars().count() >= 2
            && rest
                .strip_suffix(*r)
                .is_some_and(|qualifier| !qualifier.chars().any(is_han))
    });
    (ROLES.contains(&rest) || compound || long_role_at_end).then_some((et_al, rest))
}

/// Takes a 「ほか」 standing as the last word off the names: (names, 「ほか」 or empty).
fn split_et_al(names: &str) -> (&str, &'static str) {
    for e in ET_AL {
        if let Some(rest) = names.strip_suffix(e)
            && rest.ends_with(' ')
        {
            return (rest.trim_end(), e);
        }
    }
    (names, "")
}

/// A role transcribed before the names (`監修石毛直道`, `編集委員, 村尾誠一`), as
/// (names, role); `None` when the statement does not start with one or nothing follows.
fn leading_role(statement: &str) -> Option<(&str, String)> {
    let mut rest = statement;
    let mut roles = Vec::new();
    loop {
        let (word, role) = LEADING_ROLES
            .iter()
            .find(|(word, _)| rest.starts_with(*word))?;
        roles.push(*role);
        rest = &rest[word.len()..];
        // 「編集・解說鶴見俊輔」: roles joined by 「・」.
        match rest.strip_prefix('・') {
            Some(more) if LEADING_ROLES.iter().any(|(w, _)| more.starts_with(*w)) => rest = more,
            _ => break,
        }
    }
    let names = rest.trim_start_matches([',', '、', ':', ' ']).trim();
    (!names.is_empty()).then(|| (names, roles.join("・")))
}

/// The names of a statement, written as Japanese writes them: no space inside a Japanese
/// name, 「、」 between names, no ISBD punctuation left at the end.
fn tidy_names(names: &str) -> String {
    let chars: Vec<char> = names.chars().collect();
    let mut out = String::with_capacity(names.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let before = out.chars().next_back();
        let next = chars.get(i + 1).copied();
        match c {
            ' ' if joins(before, next) => {}
            ',' | '，' => {
                // `陣内一保, 安藤徳彦` → 「陣内一保、安藤徳彦」.
                let after = chars[i + 1..].iter().copied().find(|c| *c != ' ');
                if before.is_some_and(is_japanese) && after.is_some_and(is_japanese) {
                    out.push('、');
                    while chars.get(i + 1) == Some(&' ') {
                        i += 1;
                    }
                } else {
                    out.push(c);
                }
            }
            _ => out.push(c),
        }
        i += 1;
    }
    trim_isbd(out.trim()).to_string()
}

/// Whether a space between `before` and `after` goes: between the family and given name
/// of a Japanese name (「松下 幸子」), not between two katakana words, which may be a
/// foreign name written apart.
fn joins(before: Option<char>, after: Option<char>) -> bool {
    match (before, after) {
        (Some(a), Some(b)) => {
            is_japanese(a) && is_japanese(b) && !(is_katakana(a) && is_katakana(b))
        }
        _ => false,
    }
}

fn from_headings(author: &str) -> String {
    let names: Vec<String> = author
        .split([';', '；'])
        .map(heading)
        .filter(|s| !s.is_empty())
        .collect();
    join(&names)
}

/// One heading as written: 「松下幸子」 from `松下, 幸子`, "Lucy Maud Montgomery" from
/// `Montgomery, Lucy Maud`, dates dropped (`夏目, 漱石, 1867-1916`, `朝陽会 (2002年)`).
fn heading(heading: &str) -> String {
    let heading = collapse_spaces(heading);
    let heading = trim_isbd(&heading);
    let parts: Vec<&str> = heading
        .split([',', '，'])
        .map(|p| without_date_qualifier(p.trim()))
        .filter(|p| !p.is_empty() && !is_date(p))
        .collect();
    let (family, given, rest) = match parts.as_slice() {
        [] => return String::new(),
        [one] => {
            // Free text where a heading is expected (the admin API): tidied like a
            // statement's names, a role after a space kept.
            return match trailing_role(one, false) {
                Some((names, et_al, role)) => format!("{}{et_al} {role}", tidy_names(names)),
                None => tidy_names(one),
            };
        }
        [family, given, rest @ ..] => (*family, *given, rest),
    };
    let name = if family.chars().any(is_han)
        || (family.chars().any(is_japanese) && given.chars().any(is_han))
    {
        // Japanese order, written together: 松下 + 幸子.
        tidy_names(&format!("{family} {given}"))
    } else if family.chars().any(is_japanese) {
        // A foreign name in katakana: given name first, 「・」 between.
        let sep = if given.chars().any(is_japanese) {
            "・"
        } else {
            " "
        };
        format!("{given}{sep}{family}")
    } else if is_surname(family) {
        format!("{given} {family}")
    } else {
        // Not an inverted heading but names as written (`Andrew Hunt, David Thomas`).
        return heading.to_string();
    };
    std::iter::once(name)
        .chain(rest.iter().map(|r| r.to_string()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A Western surname as a heading inverts it: one word, with its particles (`van Gogh`).
fn is_surname(family: &str) -> bool {
    const PARTICLES: &[&str] = &[
        "van", "von", "de", "der", "den", "du", "da", "di", "del", "della", "la", "le", "ten",
    ];
    let words: Vec<&str> = family.split(' ').collect();
    words
        .split_last()
        .is_some_and(|(_, particles)| particles.iter().all(|p| PARTICLES.contains(p)))
}

/// A heading's date (`1867-1916`, `1874-`, `b. 1950`, `1950年生`, `fl. 1200`).
fn is_date(part: &str) -> bool {
    const WORDS: &[&str] = &["b.", "d.", "fl.", "ca.", "active"];
    if !part
        .chars()
        .any(|c| c.is_ascii_digit() || ('０'..='９').contains(&c))
    {
        return false;
    }
    let mut rest = part.to_string();
    for w in WORDS {
        rest = rest.replace(w, "");
    }
    rest.chars().all(|c| {
        c.is_ascii_digit()
            || ('０'..='９').contains(&c)
            || matches!(
                c,
                '-' | '?'
                    | '.'
                    | ' '
                    | '~'
                    | '〜'
                    | '－'
                    | '年'
                    | '生'
                    | '没'
                    | '頃'
                    | '世'
                    | '紀'
                    | '前'
            )
    })
}

/// A heading without its date in parentheses (`朝陽会 (2002年)`); other qualifiers stay
/// (`大久保病院 (東京都立)`).
fn without_date_qualifier(part: &str) -> &str {
    if let Some(open) = part.rfind(['(', '（'])
        && part.ends_with([')', '）'])
    {
        let inside = part[open..]
            .trim_start_matches(['(', '（'])
            .trim_end_matches([')', '）']);
        if is_date(inside) {
            return part[..open].trim_end();
        }
    }
    part
}

fn collapse_spaces(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The ISBD punctuation that may end a transcribed element (` /`, ` :`, ` ;`, ` =`, `,`,
/// and a Japanese statement's full stop), trimmed from the end only.
fn trim_isbd(mut text: &str) -> &str {
    loop {
        let before = text;
        text = text.trim_end();
        for mark in ['/', ':', ';', '=', ',', '、', '，'] {
            text = text.strip_suffix(mark).unwrap_or(text);
        }
        if let Some(rest) = text.strip_suffix('.')
            && rest.chars().next_back().is_some_and(is_japanese)
        {
            text = rest;
        }
        if text == before {
            return text.trim_start();
        }
    }
}

/// A kanji, or 〓 (the geta mark cataloguers write for one they cannot set).
fn is_han(c: char) -> bool {
    super::text::is_han(c) || c == '〓'
}

fn is_katakana(c: char) -> bool {
    matches!(c, '\u{30A0}'..='\u{30FF}' | '\u{31F0}'..='\u{31FF}' | '\u{FF66}'..='\u{FF9F}')
}

/// Japanese script: kanji, kana, and the punctuation of Japanese text (「」、・).
fn is_japanese(c: char) -> bool {
    is_han(c)
        || is_katakana(c)
        || matches!(c, '\u{3000}'..='\u{303F}' | '\u{3040}'..='\u{309F}' | '\u{FF01}'..='\u{FF65}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(s: &str) -> String {
        creators(s, "")
    }

    fn headings(a: &str) -> String {
        creators("", a)
    }

    #[test]
    fn the_statement_is_preferred_to_the_headings() {
        assert_eq!(
            creators(
                "モンゴメリ 著 ; 掛川恭子 訳",
                "Montgomery, Lucy Maud ; 掛川, 恭子"
            ),
            "モンゴメリ 著；掛川恭子 訳"
        );
        assert_eq!(creators("松下幸子 著", "松下, 幸子"), "松下幸子 著");
        // A statement that leaves nothing (only punctuation) gives way to the headings.
        assert_eq!(creators(" / ", "松下, 幸子"), "松下幸子");
        assert_eq!(creators("", ""), "");
        assert_eq!(creators("  ", " ; "), "");
    }

    #[test]
    fn statements_are_joined_with_a_full_width_semicolon() {
        for s in [
            "モンゴメリ 著 ; 掛川恭子 訳",
            "モンゴメリ 著；掛川恭子 訳",
            "モンゴメリ 著 ／ 掛川恭子 訳",
            "モンゴメリ 著 ;掛川恭子 訳",
            "モンゴメリ 著 / 掛川恭子 訳",
        ] {
            assert_eq!(statement(s), "モンゴメリ 著；掛川恭子 訳", "{s}");
        }
        assert_eq!(
            statement("陣内一保, 安藤徳彦 監修 ; 伊藤利之, 三宅捷太, 小池純子 編"),
            "陣内一保、安藤徳彦 監修；伊藤利之、三宅捷太、小池純子 編"
        );
    }

    #[test]
    fn a_space_inside_a_japanese_name_goes_and_one_stays_before_the_role() {
        assert_eq!(statement("松下 幸子 著"), "松下幸子 著");
        assert_eq!(statement("松下　幸子　著"), "松下幸子 著");
        assert_eq!(statement("眞鍋 俊二 著."), "眞鍋俊二 著");
        assert_eq!(statement("五十嵐 智友"), "五十嵐智友");
        assert_eq!(statement("田島和生  著"), "田島和生 著");
        // Two katakana words may be a foreign name written apart: kept.
        assert_eq!(statement("ジョン スミス 著"), "ジョン スミス 著");
        // Between Latin letters and kanji too.
        assert_eq!(statement("NHK 取材班編"), "NHK 取材班 編");
        assert_eq!(
            statement("「君が代」 訴訟をすすめる会編."),
            "「君が代」訴訟をすすめる会 編"
        );
    }

    #[test]
    fn the_brackets_of_a_supplied_role_go() {
        assert_eq!(statement("夏目漱石 [著]"), "夏目漱石 著");
        assert_eq!(
            statement("モンゴメリ [著] ; 村岡花子 訳"),
            "モンゴメリ 著；村岡花子 訳"
        );
        assert_eq!(statement("高橋生健 [撮影]"), "高橋生健 撮影");
        assert_eq!(statement("諏訪春雄 [編]著."), "諏訪春雄 編著");
        assert_eq!(statement("夏目漱石 ［著］"), "夏目漱石 著");
        assert_eq!(
            statement("奈街三郎 著 ; Tazawa Tatuo [絵]"),
            "奈街三郎 著；Tazawa Tatuo 絵"
        );
    }

    #[test]
    fn a_role_written_against_the_name_is_set_apart() {
        assert_eq!(statement("池田昭著."), "池田昭 著");
        assert_eq!(statement("小川正人編著."), "小川正人 編著");
        assert_eq!(statement("石川昭, 根城泰共著."), "石川昭、根城泰 共著");
        assert_eq!(statement("北博昭編解說."), "北博昭 編解說");
        assert_eq!(
            statement("ヲルトラン著 ; 井上正一訳."),
            "ヲルトラン 著；井上正一 訳"
        );
        assert_eq!(statement("田村裕・坂井秀弥編."), "田村裕・坂井秀弥 編");
        assert_eq!(statement("高木 〓元著."), "高木〓元 著");
        // 「作」 ends names (江畑耕作): never taken for a role without a space.
        assert_eq!(statement("江畑耕作."), "江畑耕作");
        assert_eq!(statement("モンゴメリ 作"), "モンゴメリ 作");
        // Nothing but the role: nothing to set apart.
        assert_eq!(statement("著"), "著");
    }

    #[test]
    fn a_name_is_not_taken_for_a_role() {
        // 「文」 is a given name; alone after a space it stays part of the name.
        assert_eq!(statement("幸田 文"), "幸田文");
        assert_eq!(statement("長新太 絵・文"), "長新太 絵・文");
        assert_eq!(statement("松下 幸子"), "松下幸子");
        assert_eq!(statement("H. チ一スリク監收"), "H. チ一スリク監收");
    }

    #[test]
    fn compound_and_qualified_roles_after_a_space_are_roles() {
        assert_eq!(statement("アネスタ 編集・企画"), "アネスタ 編集・企画");
        assert_eq!(
            statement(
                "ヤマハミュージックエンタテインメントホールディングス 編著 ; 及川良子 カリキュラム監修"
            ),
            "ヤマハミュージックエンタテインメントホールディングス 編著；及川良子 カリキュラム監修"
        );
        assert_eq!(
            statement("L.ウェア [著] ; 高橋泰邦 訳 ; 山野辺進 え"),
            "L.ウェア 著；高橋泰邦 訳；山野辺進 え"
        );
    }

    #[test]
    fn others_stay_with_the_names() {
        assert_eq!(statement("沢田昭二ほか著."), "沢田昭二ほか 著");
        assert_eq!(statement("赤木重典 [ほか]著"), "赤木重典ほか 著");
        assert_eq!(
            statement("ヘンリイ・スレッサー 著 ; 高橋泰邦 他訳"),
            "ヘンリイ・スレッサー 著；高橋泰邦他 訳"
        );
        assert_eq!(statement("岩崎信彦 ... [et al.] 編."), "岩崎信彦ほか 編");
        assert_eq!(
            statement("三橋規宏編 ; 豊田章一郎 ...[et al.]."),
            "三橋規宏 編；豊田章一郎ほか"
        );
        assert_eq!(
            statement("花輪俊哉編著 ; 執筆者花輪俊哉 ... [et al.]."),
            "花輪俊哉 編著；花輪俊哉ほか 執筆"
        );
    }

    #[test]
    fn a_role_transcribed_before_the_name_follows_it() {
        assert_eq!(
            statement("監修石毛直道 ; 責任編集豊川裕之."),
            "石毛直道 監修；豊川裕之 責任編集"
        );
        assert_eq!(statement("[著者竹内理三]."), "竹内理三 著");
        assert_eq!(
            statement("[編者 著作権 法令 研究会]."),
            "著作権法令研究会 編"
        );
        assert_eq!(statement("[編集・解說鶴見俊輔]."), "鶴見俊輔 編集・解說");
        assert_eq!(
            statement("編集委員岡田節人 ... [et al.]."),
            "岡田節人ほか 編集委員"
        );
        assert_eq!(
            statement("久保田淳, 馬場あき子編 ; [編集委員, 村尾誠一, 山田洋嗣, 渡部泰明]."),
            "久保田淳、馬場あき子 編；村尾誠一、山田洋嗣、渡部泰明 編集委員"
        );
        // A role word alone is no leading role.
        assert_eq!(statement("編集"), "編集");
    }

    #[test]
    fn a_parallel_statement_in_another_language_is_left_out() {
        assert_eq!(
            statement("小林忠雄, 半田賢竜著 = Flower / Tadao Kobayashi, Kenryu Handa."),
            "小林忠雄、半田賢竜 著"
        );
        assert_eq!(
            statement(
                "日本応用教育心理学会 [編] = Japanese journal of clinical educational psychology / Japanese Journal of Clinical Educational Psychology Association"
            ),
            "日本応用教育心理学会 編"
        );
        // A statement that is nothing but a parallel one is kept.
        assert_eq!(statement(" = by Someone"), "= by Someone");
    }

    #[test]
    fn western_statements_are_kept_as_written() {
        assert_eq!(
            statement("by Lucy Maud Montgomery"),
            "by Lucy Maud Montgomery"
        );
        assert_eq!(
            statement("by Lucy Maud Montgomery ; illustrated by M.A. and W.A.J. Claus"),
            "by Lucy Maud Montgomery; illustrated by M.A. and W.A.J. Claus"
        );
        assert_eq!(statement("verkoj de Dil Avia"), "verkoj de Dil Avia");
        assert_eq!(
            statement("by John Smith ... [et al.] /"),
            "by John Smith ... et al."
        );
        assert_eq!(
            statement("Andrew Hunt, David Thomas."),
            "Andrew Hunt, David Thomas."
        );
    }

    #[test]
    fn japanese_headings_are_written_together_without_dates() {
        assert_eq!(headings("松下, 幸子"), "松下幸子");
        assert_eq!(headings("夏目, 漱石, 1867-1916"), "夏目漱石");
        assert_eq!(headings("眞鍋 俊二"), "眞鍋俊二");
        assert_eq!(headings("阿部主計"), "阿部主計");
        assert_eq!(headings("タサン, 志麻"), "タサン志麻");
        assert_eq!(headings("朝陽会 (2002年)"), "朝陽会");
        assert_eq!(headings("大久保病院 (東京都立)"), "大久保病院 (東京都立)");
        assert_eq!(
            headings("産業技術総合研究所. 四国産学官連携センター"),
            "産業技術総合研究所. 四国産学官連携センター"
        );
    }

    #[test]
    fn western_headings_are_turned_to_the_order_people_write() {
        assert_eq!(headings("Montgomery, Lucy Maud"), "Lucy Maud Montgomery");
        assert_eq!(headings("Montgomery, L. M., 1874-1942"), "L. M. Montgomery");
        assert_eq!(headings("O'Brian, Patrick"), "Patrick O'Brian");
        assert_eq!(headings("Gogh, Vincent van"), "Vincent van Gogh");
        assert_eq!(headings("van Gogh, Vincent"), "Vincent van Gogh");
        assert_eq!(
            headings("King, Martin Luther, Jr."),
            "Martin Luther King Jr."
        );
        assert_eq!(headings("Smith, John, b. 1950"), "John Smith");
        // Not a heading: names as written, kept.
        assert_eq!(
            headings("Andrew Hunt, David Thomas"),
            "Andrew Hunt, David Thomas"
        );
        // A foreign name in katakana.
        assert_eq!(
            headings("モンゴメリ, ルーシー・モード"),
            "ルーシー・モード・モンゴメリ"
        );
        assert_eq!(headings("モンゴメリ, L. M."), "L. M. モンゴメリ");
    }

    #[test]
    fn several_headings_are_joined_and_no_role_is_invented() {
        assert_eq!(
            headings("Montgomery, Lucy Maud ; 掛川, 恭子"),
            "Lucy Maud Montgomery；掛川恭子"
        );
        assert_eq!(
            headings("Kent, Alexander ; Hunt, Andrew"),
            "Alexander Kent; Andrew Hunt"
        );
        assert_eq!(
            headings("朝陽会 (2002年) ; 国立印刷局"),
            "朝陽会；国立印刷局"
        );
        // Free text typed where a heading belongs: a role after a space is the typist's.
        assert_eq!(headings("村上 春樹"), "村上春樹");
        assert_eq!(headings("松下 幸子 著"), "松下幸子 著");
        assert_eq!(headings("1867-1916"), "");
    }

    #[test]
    fn dates_are_told_from_names() {
        for date in [
            "1867-1916",
            "1874-",
            "b. 1950",
            "1950年生",
            "fl. 1200",
            "１９５０－",
        ] {
            assert!(is_date(date), "{date}");
        }
        for name in [
            "漱石",
            "Lucy Maud",
            "Jr.",
            "3代目",
            "John 2nd",
            "19th cent.",
        ] {
            assert!(!is_date(name), "{name}");
        }
    }
}
