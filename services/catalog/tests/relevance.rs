//! The relevance set of issue 10: queries made from the real records the first start loads
//! (`seed/`: 300 Library of Congress records of Japanese books, 300 NDL JAPAN/MARC records),
//! each with the title it must find, in five kinds — the title in kanji, its reading in
//! kana, its romanisation as a patron types it, its author, and the title written with old
//! kanji — and the share found first and in the top ten. The figures are printed; the
//! floors asserted are just below what this catalogue measured when they were set, so a
//! change that loses relevance fails here.

use std::path::Path;
use std::sync::Arc;

use kitsuki_catalog::Catalog;
use kitsuki_catalog::domain::text::{normalize, variant_table};
use kitsuki_catalog::import::{ImportOptions, import_file};
use kitsuki_catalog::index::SearchFilter;
use kitsuki_catalog::readings::{ReadingGenerator, ipadic_dir};
use kitsuki_platform::clock::SystemClock;
use kitsuki_platform::{db, testing};
use sqlx::Row;

struct Record {
    id: String,
    title: String,
    reading: String,
    author: String,
    aliases: Vec<String>,
}

#[derive(Default)]
struct Tally {
    queries: usize,
    first: usize,
    top10: usize,
}

impl Tally {
    fn share(n: usize, of: usize) -> f64 {
        n as f64 / of.max(1) as f64
    }
}

async fn ranked(c: &Catalog, q: &str) -> Vec<(String, String, String)> {
    let all = SearchFilter {
        material_type: None,
        branch: None,
        available_only: false,
        ..SearchFilter::default()
    };
    c.search(q, &all, 1, 10)
        .await
        .unwrap()
        .hits
        .into_iter()
        .map(|h| (h.title_id, h.title, h.author))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relevance_set_from_the_seed_records() {
    let url = testing::fresh_sqlite_url();
    let database = db::connect(&url).await.unwrap();
    let dir = std::env::temp_dir().join(format!("kitsuki-relevance-{}", testing::unique_id()));
    let c = Catalog::open(database, Some(&dir), Arc::new(SystemClock))
        .await
        .unwrap();
    let generator = ReadingGenerator::load(&ipadic_dir(), None)
        .unwrap_or_else(|e| panic!("{e}: `bash scripts/ensure-japanese-data` installs it"));
    c.use_readings(Arc::new(generator));
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("seed");
    for file in ["loc-jpn-880-sample.mrc", "ndl-japan-marc-300.json"] {
        import_file(&c, &seed.join(file), ImportOptions::default(), &mut |_| {})
            .await
            .unwrap();
    }
    let rows = sqlx::query("SELECT title_id, title, title_reading, author, aliases FROM titles")
        .fetch_all(&c.db().pool)
        .await
        .unwrap();
    let records: Vec<Record> = rows
        .iter()
        .map(|r| Record {
            id: r.get("title_id"),
            title: r.get("title"),
            reading: r.get("title_reading"),
            author: r.get("author"),
            aliases: r
                .get::<String, _>("aliases")
                .split('\n')
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect(),
        })
        .collect();
    assert!(records.len() >= 500, "{} records imported", records.len());

    // Records whose title is another's too (volumes, editions) are equally right answers.
    let same_title = |id: &str, want: &Record, records: &[Record]| {
        records
            .iter()
            .find(|r| r.id == id)
            .is_some_and(|r| normalize(&r.title) == normalize(&want.title))
    };
    let old_form: std::collections::HashMap<char, char> = variant_table()
        .iter()
        .map(|&(old, new)| (new, old))
        .collect();

    let mut kinds: Vec<(&str, Tally)> = ["kanji title", "reading", "romaji", "author", "old kanji"]
        .into_iter()
        .map(|k| (k, Tally::default()))
        .collect();
    for r in &records {
        let mut queries: Vec<(usize, String)> = Vec::new();
        if r.title
            .chars()
            .any(|c| ('\u{4E00}'..='\u{9FFF}').contains(&c))
        {
            queries.push((0, r.title.clone()));
            let old: String = r
                .title
                .chars()
                .map(|c| *old_form.get(&c).unwrap_or(&c))
                .collect();
            if old != r.title {
                queries.push((4, old));
            }
        }
        if !r.reading.is_empty() {
            queries.push((1, r.reading.clone()));
        }
        // The romanisation as typed: no macrons, no punctuation.
        if let Some(romanised) = r
            .aliases
            .first()
            .filter(|a| a.chars().all(|c| !('\u{3040}'..='\u{9FFF}').contains(&c)))
        {
            let typed: String = normalize(romanised)
                .chars()
                .map(|c| if c.is_alphanumeric() { c } else { ' ' })
                .collect();
            if typed.split_whitespace().count() >= 2 {
                queries.push((2, typed));
            }
        }
        for (kind, q) in queries {
            let hits = ranked(&c, &q).await;
            let tally = &mut kinds[kind].1;
            tally.queries += 1;
            if hits
                .first()
                .is_some_and(|h| h.0 == r.id || same_title(&h.0, r, &records))
            {
                tally.first += 1;
            }
            if hits.iter().any(|h| h.0 == r.id) {
                tally.top10 += 1;
            }
        }
        // The author, as a patron writes a name (parts together): a title by them first.
        let name: String = r
            .author
            .split(';')
            .next()
            .unwrap_or("")
            .split([',', ' '])
            .collect();
        if name.chars().count() >= 2 && name.chars().any(|c| ('\u{4E00}'..='\u{9FFF}').contains(&c))
        {
            let hits = ranked(&c, &name).await;
            let tally = &mut kinds[3].1;
            tally.queries += 1;
            let by = |author: &str| {
                let a: String = normalize(author).split([',', ' ']).collect();
                a.contains(&normalize(&name))
            };
            if hits.first().is_some_and(|h| by(&h.2)) {
                tally.first += 1;
            }
            if hits.iter().any(|h| h.0 == r.id) {
                tally.top10 += 1;
            }
        }
    }

    let total: usize = kinds.iter().map(|(_, t)| t.queries).sum();
    println!(
        "relevance set: {total} queries on {} records",
        records.len()
    );
    println!("| kind | queries | first hit | in the top 10 |\n|---|---|---|---|");
    for (kind, t) in &kinds {
        println!(
            "| {kind} | {} | {:.1} % | {:.1} % |",
            t.queries,
            100.0 * Tally::share(t.first, t.queries),
            100.0 * Tally::share(t.top10, t.queries)
        );
    }
    assert!(total >= 100, "only {total} queries");
    // Floors just below what was measured when they were set (first hit: 100 / 99.8 /
    // 98.8 / 95.7 / 100 % since the exact-title tier; top 10: 100 % but for authors,
    // 95.7 %, whose many titles cannot all be in the first ten).
    for ((kind, t), (first, top10)) in kinds.iter().zip([
        (0.995, 0.995),
        (0.98, 0.99),
        (0.96, 0.99),
        (0.93, 0.93),
        (0.995, 0.995),
    ]) {
        assert!(
            Tally::share(t.first, t.queries) >= first && Tally::share(t.top10, t.queries) >= top10,
            "{kind}: first hit {} of {}, top 10 {} of {}",
            t.first,
            t.queries,
            t.top10,
            t.queries
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
