//! The search index's watermark against real databases (PostgreSQL, a fresh database per
//! test, and SQLite): it survives a reopen, a reopen of a current index indexes nothing,
//! titles written while the index was closed are caught up at open, a catch-up over more
//! titles than one SQL statement may bind works, concurrent writers never leave a title
//! behind the watermark, and an index that cannot say what it holds is rebuilt in the
//! background while it serves, `/readyz` saying so.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kitsuki_catalog::index::{SearchFilter, SearchIndex};
use kitsuki_catalog::model::MaterialType;
use kitsuki_catalog::{Catalog, NewTitle, store};
use kitsuki_platform::clock::SystemClock;
use kitsuki_platform::db::Db;
use kitsuki_platform::on_both_backends;
use kitsuki_platform::server::Readiness;
use kitsuki_platform::testing;
use kitsuki_platform::testing::Backend;
use kitsuki_proto::{Barcode, Branch};

async fn database(backend: Backend) -> Db {
    testing::fresh_db(backend).await
}

fn index_dir() -> PathBuf {
    std::env::temp_dir().join(format!("kitsuki-index-{}", testing::unique_id()))
}

async fn open(db: &Db, dir: &std::path::Path) -> Catalog {
    Catalog::open(db.clone(), Some(dir), Arc::new(SystemClock))
        .await
        .unwrap()
}

fn book(title: &str) -> NewTitle {
    NewTitle {
        title: title.into(),
        title_reading: String::new(),
        author: "著者".into(),
        responsibility: String::new(),
        ndc: String::new(),
        publisher: "出版社".into(),
        year: None,
        isbn: None,
        material_type: MaterialType::Book,
        aliases: vec![],
        source_id: None,
    }
}

async fn total(c: &Catalog, q: &str) -> u64 {
    c.search(q, &SearchFilter::default(), 1, 20)
        .await
        .unwrap()
        .total
}

async fn last_seq(c: &Catalog) -> u64 {
    store::last_change_seq(&c.db().pool).await.unwrap() as u64
}

async fn the_watermark_survives_a_reopen_and_a_current_reopen_indexes_nothing(backend: Backend) {
    let (db, dir) = (database(backend).await, index_dir());
    let c = open(&db, &dir).await;
    assert_eq!(c.index_watermark(), Some(0), "an empty index holds nothing");
    let (id, _) = c.create_title(book("吾輩は猫である"), true).await.unwrap();
    c.create_item(&id, &Barcode::parse("W-1").unwrap(), Branch::Ota, "", true)
        .await
        .unwrap();
    c.create_titles(vec![book("坊っちゃん"), book("草枕")])
        .await
        .unwrap();
    assert_eq!(c.catch_up_index().await.unwrap(), 2);
    let seq = last_seq(&c).await;
    assert_eq!(c.index_watermark(), Some(seq));
    drop(c);

    let c = open(&db, &dir).await;
    assert_eq!(
        c.index_watermark(),
        Some(seq),
        "read from the commit payload"
    );
    assert_eq!(c.catch_up_index().await.unwrap(), 0, "nothing new");
    assert_eq!(total(&c, "猫").await, 1);
    assert_eq!(total(&c, "草枕").await, 1);
    let at_ota = SearchFilter {
        branch: Some("ota".into()),
        ..SearchFilter::default()
    };
    let hits = c.search("", &at_ota, 1, 20).await.unwrap();
    assert_eq!(hits.total, 1, "the item's branch is in the document");
}

async fn titles_written_while_the_index_was_closed_are_caught_up_at_open(backend: Backend) {
    let (db, dir) = (database(backend).await, index_dir());
    let c = open(&db, &dir).await;
    let (id, _) = c.create_title(book("こころ"), true).await.unwrap();
    drop(c);
    // Another process without the index: `kitsuki import`, or a replica whose index is
    // elsewhere.
    let other = Catalog::open_without_index(db.clone(), Arc::new(SystemClock))
        .await
        .unwrap();
    let news = (0..7).map(|i| book(&format!("門 第{i}巻"))).collect();
    other.create_titles(news).await.unwrap();
    other
        .create_item(
            &id,
            &Barcode::parse("W-2").unwrap(),
            Branch::Yamaga,
            "",
            false,
        )
        .await
        .unwrap();

    let c = open(&db, &dir).await;
    assert_eq!(c.index_watermark(), Some(last_seq(&c).await));
    assert_eq!(total(&c, "門").await, 7);
    let at_yamaga = SearchFilter {
        branch: Some("yamaga".into()),
        ..SearchFilter::default()
    };
    let hits = c.search("こころ", &at_yamaga, 1, 20).await.unwrap();
    assert_eq!(hits.total, 1, "the item added meanwhile is in");
}

/// More titles than SQLite binds in one statement (32,766) or than one statement of
/// PostgreSQL takes (65,535 with the items' second list): the issue's import of more than
/// ~32k titles was left unindexed by one `IN (…)` of every id.
const MANY: usize = 33_000;

async fn a_catch_up_over_more_titles_than_one_statement_binds(backend: Backend) {
    let (db, dir) = (database(backend).await, index_dir());
    let writer = Catalog::open_without_index(db.clone(), Arc::new(SystemClock))
        .await
        .unwrap();
    let titles: Vec<NewTitle> = (0..MANY).map(|i| book(&format!("大量 {i}"))).collect();
    for batch in titles.chunks(500) {
        for outcome in writer.create_titles(batch.to_vec()).await.unwrap() {
            assert!(outcome.unwrap().1);
        }
    }
    let c = open(&db, &dir).await;
    assert_eq!(c.search_index().num_docs(), MANY as u64);
    assert_eq!(total(&c, "大量").await, MANY as u64);
    assert_eq!(c.index_watermark(), Some(last_seq(&c).await));
}

/// Writers on PostgreSQL commit concurrently while catch-ups run: each change's number is
/// taken under the `catalog_state` row lock, held to the commit, so a catch-up never
/// passes a number whose title is not committed yet; at the end every title is in.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_on_postgres_never_leave_a_title_behind_the_watermark() {
    const WRITERS: usize = 4;
    const EACH: usize = 40;
    let db = database(Backend::Postgres).await;
    let c = Catalog::open(db.clone(), None, Arc::new(SystemClock))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let writer = Catalog::open_without_index(db.clone(), Arc::new(SystemClock))
            .await
            .unwrap();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..EACH {
                let (id, _) = if i % 5 == 0 {
                    let news = vec![
                        book(&format!("並行 {w} {i} a")),
                        book(&format!("並行 {w} {i} b")),
                    ];
                    let out = writer.create_titles(news).await.unwrap();
                    ids.push(out[1].as_ref().unwrap().0.clone());
                    out[0].clone().unwrap()
                } else {
                    writer
                        .create_title(book(&format!("並行 {w} {i}")), false)
                        .await
                        .unwrap()
                };
                if i % 3 == 0 {
                    let barcode = Barcode::parse(&format!("C-{w}-{i}")).unwrap();
                    writer
                        .create_item(&id, &barcode, Branch::Kitsuki, "", false)
                        .await
                        .unwrap();
                }
                ids.push(id);
            }
            ids
        }));
    }
    let follower = {
        let c = c.clone();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let d = done.clone();
        (
            tokio::spawn(async move {
                while !d.load(std::sync::atomic::Ordering::SeqCst) {
                    c.catch_up_index().await.unwrap();
                    tokio::task::yield_now().await;
                }
            }),
            done,
        )
    };
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    follower.1.store(true, std::sync::atomic::Ordering::SeqCst);
    follower.0.await.unwrap();
    c.catch_up_index().await.unwrap();
    assert_eq!(c.index_watermark(), Some(last_seq(&c).await));
    let missing: Vec<_> = ids.iter().filter(|id| !c.is_indexed(id)).collect();
    assert!(missing.is_empty(), "left behind: {missing:?}");
    assert_eq!(c.search_index().num_docs(), ids.len() as u64);
    let with_items = c
        .search(
            "並行",
            &SearchFilter {
                branch: Some("kitsuki".into()),
                ..SearchFilter::default()
            },
            1,
            20,
        )
        .await
        .unwrap();
    assert_eq!(with_items.total, (WRITERS * EACH.div_ceil(3)) as u64);
}

/// Waits (without a timing assertion: the deadline only ends a hung test) for the
/// background rebuild to be done.
async fn rebuilt(c: &Catalog) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while c.index_gate().reason().is_some() {
        assert!(Instant::now() < deadline, "the rebuild never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An index of an older format (its payload says so; the same schema) serves its old
/// documents while the new one is built beside it; `/readyz` says what happens; then the
/// new one holds the database's titles and its watermark.
async fn an_older_format_is_rebuilt_in_the_background_while_it_serves(backend: Backend) {
    let (db, dir) = (database(backend).await, index_dir());
    let c = open(&db, &dir).await;
    c.create_titles((0..20).map(|i| book(&format!("新しい本 {i}"))).collect())
        .await
        .unwrap();
    drop(c);
    // What an older kitsuki left: a document the database does not have, and no payload
    // of this format.
    {
        let stale = SearchIndex::open_or_create(&dir).unwrap();
        stale
            .upsert(&kitsuki_catalog::index::IndexDoc {
                title_id: "gone".into(),
                title: "古い索引".into(),
                material_type: "book".into(),
                created_at: "2020-01-01T00:00:00Z".into(),
                ..Default::default()
            })
            .unwrap();
    }
    overwrite_payload(&dir, r#"{"format":0,"change_seq":999999}"#);

    // The current-thread runtime of this test runs the rebuild only when the test waits:
    // right after the open it has not begun.
    let c = open(&db, &dir).await;
    // Before anything awaits: the rebuild may finish during the first search below.
    assert_eq!(c.index_watermark(), None);
    let readiness = Readiness::new().gated_by(c.index_gate());
    readiness.set_ready();
    assert!(!readiness.is_ready().await);
    let why = readiness.waiting_for().unwrap();
    assert!(why.contains("rebuilding the search index"), "{why}");
    assert_eq!(total(&c, "古い索引").await, 1, "the old index serves");

    rebuilt(&c).await;
    assert!(readiness.is_ready().await);
    assert_eq!(total(&c, "古い索引").await, 0);
    assert_eq!(total(&c, "新しい本").await, 20);
    assert_eq!(c.index_watermark(), Some(last_seq(&c).await));
    // New writes after the swap go to the new index, in its final directory.
    c.create_title(book("後の本"), true).await.unwrap();
    assert_eq!(total(&c, "後の本").await, 1);
    drop(c);
    let c = open(&db, &dir).await;
    assert!(
        c.index_gate().reason().is_none(),
        "the rebuilt index is current"
    );
    assert_eq!(total(&c, "後の本").await, 1);
    assert_eq!(c.catch_up_index().await.unwrap(), 0);
}

/// An index of another schema (here one with a single field) is rebuilt the same way;
/// it cannot serve our searches, so an empty one serves meanwhile.
async fn another_schema_is_rebuilt_in_the_background(backend: Backend) {
    let (db, dir) = (database(backend).await, index_dir());
    let writer = Catalog::open_without_index(db.clone(), Arc::new(SystemClock))
        .await
        .unwrap();
    writer
        .create_titles((0..5).map(|i| book(&format!("図式 {i}"))).collect())
        .await
        .unwrap();
    {
        use tantivy::schema::{STORED, STRING, Schema};
        let mut builder = Schema::builder();
        builder.add_text_field("title_id", STRING | STORED);
        std::fs::create_dir_all(&dir).unwrap();
        let index = tantivy::Index::create_in_dir(&dir, builder.build()).unwrap();
        let mut w: tantivy::IndexWriter = index.writer(15_000_000).unwrap();
        w.commit().unwrap();
    }
    let c = open(&db, &dir).await;
    let why = c.index_gate().reason().unwrap();
    assert!(why.contains("another schema"), "{why}");
    assert_eq!(total(&c, "図式").await, 0);
    rebuilt(&c).await;
    assert_eq!(total(&c, "図式").await, 5);
    drop(c);
    let c = open(&db, &dir).await;
    assert!(c.index_gate().reason().is_none());
    assert_eq!(total(&c, "図式").await, 5);
}

/// Rewrites the payload of the index's last commit (as an older kitsuki's would read).
fn overwrite_payload(dir: &std::path::Path, payload: &str) {
    let index = tantivy::Index::open_in_dir(dir).unwrap();
    let mut w: tantivy::IndexWriter = index.writer(15_000_000).unwrap();
    let mut prepared = w.prepare_commit().unwrap();
    prepared.set_payload(payload);
    prepared.commit().unwrap();
}

on_both_backends!(
    the_watermark_survives_a_reopen_and_a_current_reopen_indexes_nothing,
    titles_written_while_the_index_was_closed_are_caught_up_at_open,
    a_catch_up_over_more_titles_than_one_statement_binds,
    an_older_format_is_rebuilt_in_the_background_while_it_serves,
    another_schema_is_rebuilt_in_the_background,
);
