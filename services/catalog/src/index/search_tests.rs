//! Tests of what issue 10 added to the index: the relevance tiers, newer editions first,
//! the sort orders, facets and the NDC and decade filters, editions grouped, and the
//! suggestions for a query without hits.

use super::*;

fn book(id: &str, title: &str, author: &str, year: Option<i64>) -> IndexDoc {
    IndexDoc {
        title_id: id.to_owned(),
        title: title.to_owned(),
        author: author.to_owned(),
        year,
        material_type: "book".to_owned(),
        created_at: "2024-01-01T00:00:00Z".to_owned(),
        ..IndexDoc::default()
    }
}

fn index_with(docs: &[IndexDoc]) -> SearchIndex {
    let index = SearchIndex::in_memory().unwrap();
    index.upsert_many(docs).unwrap();
    index
}

fn ranked(index: &SearchIndex, q: &str, options: SearchOptions) -> Vec<String> {
    let filter = SearchFilter::default();
    index
        .search_with(q, &filter, &options, 0, 100)
        .unwrap()
        .title_ids
}

fn by_relevance(index: &SearchIndex, q: &str) -> Vec<String> {
    ranked(index, q, SearchOptions::default())
}

#[test]
fn exact_title_then_title_prefix_then_author_then_the_rest() {
    let index = index_with(&[
        // Many mentions in a long title: the most BM25 would give, still last.
        book("rest", "本と旅とこころ こころの詩 こころ", "", None),
        book("author", "日記", "こころ 太郎", None),
        book("prefix", "こころの科学", "", None),
        book("exact", "こころ", "夏目漱石", None),
    ]);
    assert_eq!(
        by_relevance(&index, "こころ"),
        ["exact", "prefix", "author", "rest"]
    );
}

#[test]
fn the_exact_tier_counts_the_whole_query_and_the_reading() {
    let mut anne = book("anne", "アンの愛情", "モンゴメリ", Some(2008));
    anne.title_reading = "アン ノ アイジョウ".to_owned();
    let mut other = book("other", "愛情のアンの日々", "", Some(2020));
    other.title_reading = "アイジョウ ノ アン ノ ヒビ".to_owned();
    let index = index_with(&[other, anne]);
    assert_eq!(by_relevance(&index, "アンの愛情"), ["anne"]);
    // By reading, in kana or romaji, the exact title comes before a title holding it.
    for q in ["あんのあいじょう", "an no aijou", "an no aijo"] {
        assert_eq!(
            by_relevance(&index, q).first().map(String::as_str),
            Some("anne"),
            "{q}"
        );
    }
    // Several terms: exact only as a whole. "愛情 アン" matches both; neither is exact.
    let both = by_relevance(&index, "愛情 アン");
    assert_eq!(both.len(), 2);
}

#[test]
fn a_latin_title_prefix_and_exact_title_are_tiers_too() {
    let index = index_with(&[
        book(
            "novel",
            "a study of pride and prejudice in the novel",
            "",
            None,
        ),
        book("prefix", "pride and prejudice and zombies", "", None),
        book("exact", "Pride and Prejudice", "Austen, Jane", None),
    ]);
    assert_eq!(
        by_relevance(&index, "pride and prejudice"),
        ["exact", "prefix", "novel"]
    );
    // Both start with it; BM25 orders the two.
    assert_eq!(
        by_relevance(&index, "pride and prej")
            .last()
            .map(String::as_str),
        Some("novel")
    );
    // The words of a query stand apart as in the title: no exact or prefix tier for
    // a title that holds them with something between.
    let index = index_with(&[
        book("between", "漱石と夏目家", "", None),
        book("apart", "漱石 夏目家", "", None),
    ]);
    assert_eq!(by_relevance(&index, "漱石 夏目"), ["apart", "between"]);
}

#[test]
fn the_author_tier_needs_every_term_in_the_author() {
    let mut soseki = book("by", "坑夫", "夏目, 漱石", None);
    soseki.author_reading = "なつめ そうせき".to_owned();
    let about = book("about", "漱石と夏目家の人々", "", None);
    let index = index_with(&[about, soseki]);
    for q in [
        "夏目漱石",
        "漱石 夏目",
        "夏目,漱石",
        "natsume soseki",
        "なつめそうせき",
    ] {
        assert_eq!(
            by_relevance(&index, q).first().map(String::as_str),
            Some("by"),
            "{q}"
        );
    }
}

#[test]
fn at_equal_score_the_newer_edition_comes_first() {
    let index = index_with(&[
        book("1950", "坊っちゃん", "夏目漱石", Some(1950)),
        book("2003", "坊っちゃん", "夏目漱石", Some(2003)),
        book("none", "坊っちゃん", "夏目漱石", None),
        book("1989", "坊っちゃん", "夏目漱石", Some(1989)),
    ]);
    assert_eq!(
        by_relevance(&index, "坊っちゃん"),
        ["2003", "1989", "1950", "none"]
    );
}

#[test]
fn sorts_by_newest_and_by_reading() {
    let mut docs = [
        book("ka", "川", "", Some(2001)),
        book("a", "雨", "", Some(1990)),
        book("sa", "桜", "", Some(2015)),
        book("latin", "Zen", "", Some(1970)),
        book("kana", "いのち", "", None),
    ];
    for (doc, reading) in docs.iter_mut().zip(["かわ", "あめ", "さくら"]) {
        doc.title_reading = reading.to_owned();
    }
    let index = SearchIndex::in_memory().unwrap();
    // In two segments: a reading sort compares keys across them, not ordinals.
    index.upsert_many(&docs[..2]).unwrap();
    index.upsert_many(&docs[2..]).unwrap();
    assert_eq!(index.segments(), 2);
    let newest = SearchOptions {
        sort: SortOrder::Newest,
        ..SearchOptions::default()
    };
    assert_eq!(
        ranked(&index, "", newest),
        ["sa", "ka", "a", "latin", "kana"]
    );
    let gojuon = SearchOptions {
        sort: SortOrder::Reading,
        ..SearchOptions::default()
    };
    assert_eq!(
        ranked(&index, "", gojuon),
        ["a", "kana", "ka", "sa", "latin"]
    );
    // Paging through a reading sort keeps the order.
    let page2 = index
        .search_with("", &SearchFilter::default(), &gojuon, 2, 2)
        .unwrap();
    assert_eq!(page2.title_ids, ["ka", "sa"]);
    assert_eq!(page2.total, 5);
}

#[test]
fn facets_count_every_match_and_filters_narrow_them() {
    let mut docs = vec![
        book("novel", "海の物語", "", Some(1995)),
        book("history", "海の歴史", "", Some(2003)),
        book("magazine", "海の雑誌", "", Some(2009)),
        book("old", "海の本", "", None),
        book("other", "山の本", "", Some(1995)),
    ];
    docs[0].ndc = "913.6".to_owned();
    docs[1].ndc = "209".to_owned();
    docs[2].material_type = "magazine".to_owned();
    docs[2].ndc = "not a class".to_owned();
    docs[0].available_branches = vec!["kitsuki".to_owned(), "ota".to_owned()];
    docs[1].available_branches = vec!["kitsuki".to_owned()];
    let index = index_with(&docs);
    let options = SearchOptions {
        facets: true,
        ..SearchOptions::default()
    };
    let result = index
        .search_with("海", &SearchFilter::default(), &options, 0, 10)
        .unwrap();
    assert_eq!(result.total, 4);
    let facets = result.facets.unwrap();
    let pairs = |v: &[(&str, u64)]| -> Vec<(String, u64)> {
        v.iter().map(|(s, n)| ((*s).to_owned(), *n)).collect()
    };
    assert_eq!(
        facets.available_branches,
        pairs(&[("kitsuki", 2), ("ota", 1)])
    );
    assert_eq!(
        facets.material_types,
        pairs(&[("book", 3), ("magazine", 1)])
    );
    assert_eq!(facets.ndc_classes, vec![(2, 1), (9, 1)]);
    assert_eq!(facets.decades, vec![(1990, 1), (2000, 2)]);
    // Facets are counted even when no page is wanted.
    let counted = index
        .search_with("海", &SearchFilter::default(), &options, 0, 0)
        .unwrap();
    assert_eq!(counted.facets, Some(facets));
    // Filters by class and decade.
    let filter = |ndc_class, decade| SearchFilter {
        ndc_class,
        decade,
        ..SearchFilter::default()
    };
    let find = |f: SearchFilter| index.search("", &f, 0, 10).unwrap().title_ids;
    assert_eq!(find(filter(Some(9), None)), ["novel"]);
    assert_eq!(find(filter(None, Some(1990))).len(), 2);
    assert_eq!(find(filter(Some(9), Some(2000))), Vec::<String>::new());
    // Without facets asked, none are counted.
    assert_eq!(
        index
            .search("海", &SearchFilter::default(), 0, 10)
            .unwrap()
            .facets,
        None
    );
}

#[test]
fn editions_of_one_work_are_one_hit_and_listed_for_the_title_page() {
    let index = index_with(&[
        book("anne-1", "アンの愛情", "モンゴメリ", Some(1958)),
        book("anne-2", "アンの愛情", "モンゴメリ", Some(2008)),
        book("anne-3", "アンの愛情", "モンゴメリ", Some(1990)),
        // Same title, another author: another work.
        book("other", "アンの愛情", "村岡, 花子", Some(1970)),
        book("name", "アンの愛情", "村岡花子", Some(1980)),
        book("diary", "アンの日記", "モンゴメリ", Some(2001)),
    ]);
    let grouped = SearchOptions {
        group_editions: true,
        ..SearchOptions::default()
    };
    let result = index
        .search_with("アン", &SearchFilter::default(), &grouped, 0, 10)
        .unwrap();
    assert_eq!(result.total, 3, "{result:?}");
    let by_id: std::collections::HashMap<&str, u32> = result
        .title_ids
        .iter()
        .map(String::as_str)
        .zip(result.editions.iter().copied())
        .collect();
    // The newest edition stands for its work (equal scores), with the count.
    assert_eq!(by_id.get("anne-2"), Some(&3));
    assert_eq!(
        by_id.get("name"),
        Some(&2),
        "村岡, 花子 and 村岡花子 are one author"
    );
    assert_eq!(by_id.get("diary"), Some(&1));
    assert_eq!(
        index.editions_of("アンの愛情", "モンゴメリ", 10).unwrap(),
        ["anne-2", "anne-3", "anne-1"]
    );
    assert_eq!(
        work_key("アンの愛情", "村岡, 花子"),
        work_key("アンの愛情", "村岡花子")
    );
    assert_ne!(
        work_key("アンの愛情", "モンゴメリ"),
        work_key("アンの日記", "モンゴメリ")
    );
}

#[test]
fn a_query_without_hits_gets_the_titles_and_authors_near_it_by_reading() {
    let mut kokoro = book("kokoro", "こころ", "夏目, 漱石", None);
    kokoro.title_reading = "こころ".to_owned();
    kokoro.author_reading = "なつめ そうせき".to_owned();
    let mut anne = book("anne", "アンの愛情", "モンゴメリ", None);
    anne.title_reading = "あんのあいじょう".to_owned();
    let sea = book("sea", "海の歴史", "", None);
    let index = index_with(&[kokoro, anne, sea]);
    let near = |q: &str, generated: Option<&str>| index.suggest(q, generated, 5).unwrap();
    // One kana wrong.
    assert_eq!(
        near("なつめそうせぎ", None),
        [Suggestion {
            title_id: "kokoro".to_owned(),
            by_author: true
        }]
    );
    // A romaji slip.
    assert_eq!(near("an no aijyo", None)[0].title_id, "anne");
    // Kanji that sound the same, by the dictionary's reading.
    assert_eq!(
        near("夏目草石", Some("なつめそうせき"))[0].title_id,
        "kokoro"
    );
    // Without a reading, by its own characters.
    assert_eq!(near("海の暦史", None)[0].title_id, "sea");
    // Nothing near: nothing suggested.
    assert!(near("ぱぴぷぺぽ", None).is_empty());
    assert!(near("x", None).is_empty());
}
