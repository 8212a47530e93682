//! The catalog against real databases: PostgreSQL (a fresh database per test) and SQLite.
//! Every test body runs on both backends.

use std::sync::Arc;

use kitsuki_catalog::domain::isbn::Isbn;
use kitsuki_catalog::index::SearchFilter;
use kitsuki_catalog::model::MaterialType;
use kitsuki_catalog::{Catalog, NewTitle};
use kitsuki_platform::clock::SystemClock;
use kitsuki_platform::on_both_backends;
use kitsuki_platform::testing::Backend;
use kitsuki_platform::{outbox, testing};
use kitsuki_proto::{Barcode, Branch, ErrorCode};

async fn open(backend: Backend) -> (Catalog, std::path::PathBuf) {
    let db = testing::fresh_db(backend).await;
    let dir = std::env::temp_dir().join(format!("kitsuki-index-{}", testing::unique_id()));
    (
        Catalog::open(db, Some(&dir), Arc::new(SystemClock))
            .await
            .unwrap(),
        dir,
    )
}

fn book(title: &str, author: &str) -> NewTitle {
    NewTitle {
        title: title.into(),
        title_reading: String::new(),
        author: author.into(),
        responsibility: String::new(),
        ndc: String::new(),
        publisher: "新潮社".into(),
        year: Some(1952),
        isbn: None,
        material_type: MaterialType::Book,
        aliases: vec![],
        source_id: None,
    }
}

fn all() -> SearchFilter {
    SearchFilter {
        material_type: None,
        branch: None,
        available_only: false,
        ..SearchFilter::default()
    }
}

async fn create_read_search_and_availability(backend: Backend) {
    let (c, _) = open(backend).await;
    let (id, created) = c
        .create_title(book("こころ", "夏目漱石"), true)
        .await
        .unwrap();
    assert!(created);
    c.create_title(book("東京都の歴史", "歴史研究会"), true)
        .await
        .unwrap();
    c.create_item(
        &id,
        &Barcode::parse("kt-0001").unwrap(),
        Branch::Kitsuki,
        "913.6/ナ",
        true,
    )
    .await
    .unwrap();
    c.create_item(
        &id,
        &Barcode::parse("YM-0001").unwrap(),
        Branch::Yamaga,
        "",
        true,
    )
    .await
    .unwrap();

    for q in ["こころ", "ココロ", "ｺｺﾛ", "漱石", "夏目 こころ"] {
        let r = c.search(q, &all(), 1, 20).await.unwrap();
        assert_eq!(r.total, 1, "query {q}");
        assert_eq!(r.hits[0].title_id, id);
    }
    let r = c.search("歴史", &all(), 1, 20).await.unwrap();
    assert_eq!(r.total, 1);
    assert_eq!(r.hits[0].title, "東京都の歴史");

    let detail = c.get_title(&id).await.unwrap();
    assert_eq!(detail.items.len(), 2);
    assert_eq!(
        detail.items[0].barcode, "KT-0001",
        "barcodes are upper-cased (M1)"
    );
    let s = detail.title.unwrap();
    let by_branch = |b: &str| {
        s.availability
            .iter()
            .find(|a| a.branch == b)
            .map(|a| (a.total, a.available))
            .unwrap()
    };
    assert_eq!(by_branch("kitsuki"), (1, 1));
    assert_eq!(by_branch("yamaga"), (1, 1));
    assert_eq!(by_branch("ota"), (0, 0));

    let at_ota = SearchFilter {
        branch: Some("ota".into()),
        ..all()
    };
    assert_eq!(c.search("こころ", &at_ota, 1, 20).await.unwrap().total, 0);
    let at_yamaga = SearchFilter {
        branch: Some("yamaga".into()),
        available_only: true,
        ..all()
    };
    assert_eq!(
        c.search("こころ", &at_yamaga, 1, 20).await.unwrap().total,
        1
    );

    // Empty query browses newest first.
    let r = c.search("", &all(), 1, 20).await.unwrap();
    assert_eq!(r.total, 2);
    assert_eq!(r.hits[0].title, "東京都の歴史");
}

async fn refusals_have_codes(backend: Backend) {
    let (c, _) = open(backend).await;
    let (id, _) = c
        .create_title(book("坊っちゃん", "夏目漱石"), true)
        .await
        .unwrap();
    let bc = Barcode::parse("KT-9").unwrap();
    c.create_item(&id, &bc, Branch::Ota, "", true)
        .await
        .unwrap();
    let again = c
        .create_item(&id, &bc, Branch::Kitsuki, "", true)
        .await
        .unwrap_err();
    assert_eq!(
        again.code,
        ErrorCode::BarcodeTaken,
        "M1: unique across the three branches"
    );
    let missing = c
        .create_item(
            "0192f1c2-7a5e-7c3b-9d1e-0123456789ab",
            &Barcode::parse("X1").unwrap(),
            Branch::Ota,
            "",
            true,
        )
        .await
        .unwrap_err();
    assert_eq!(missing.code, ErrorCode::TitleNotFound);
    let empty = c.create_title(book("  ", ""), true).await.unwrap_err();
    assert_eq!(empty.code, ErrorCode::InvalidInput);
    assert_eq!(
        c.get_title("0192f1c2-7a5e-7c3b-9d1e-0123456789ab")
            .await
            .unwrap_err()
            .code,
        ErrorCode::TitleNotFound
    );
}

async fn events_are_written_with_the_change(backend: Backend) {
    let (c, _) = open(backend).await;
    let (id, _) = c
        .create_title(book("三四郎", "夏目漱石"), true)
        .await
        .unwrap();
    c.create_item(
        &id,
        &Barcode::parse("KT-10").unwrap(),
        Branch::Kitsuki,
        "",
        true,
    )
    .await
    .unwrap();
    assert_eq!(
        outbox::pending_count(c.db()).await.unwrap(),
        2,
        "one event per change, in the outbox"
    );
    // A refused change writes no event.
    let _ = c
        .create_item(
            &id,
            &Barcode::parse("KT-10").unwrap(),
            Branch::Kitsuki,
            "",
            true,
        )
        .await;
    assert_eq!(outbox::pending_count(c.db()).await.unwrap(), 2);
}

async fn source_ids_make_reimport_idempotent_and_index_rebuilds(backend: Backend) {
    let (c, dir) = open(backend).await;
    let mut t = book("門", "夏目漱石");
    t.source_id = Some("marc:123".into());
    t.isbn = Some(
        Isbn::parse("4-10-101013-2").unwrap_or_else(|_| Isbn::parse("9784101010137").unwrap()),
    );
    let (a, created_a) = c.create_title(t.clone(), true).await.unwrap();
    let (b, created_b) = c.create_title(t, true).await.unwrap();
    assert!(created_a && !created_b);
    assert_eq!(a, b);
    assert_eq!(c.counts().await.unwrap().0, 1);
    assert_eq!(c.reindex().await.unwrap(), 1);
    // Reopening with the same database and index folder (after the first holder let go of
    // the index's writer lock) finds the title again.
    let db = c.db().clone();
    drop(c);
    let reopened = Catalog::open(db, Some(&dir), Arc::new(SystemClock))
        .await
        .unwrap();
    assert_eq!(reopened.search("門", &all(), 1, 20).await.unwrap().total, 1);
}

async fn a_batch_of_titles_is_one_transaction_with_each_outcome(backend: Backend) {
    let (c, _) = open(backend).await;
    let sourced = |title: &str, source: &str| NewTitle {
        source_id: Some(source.into()),
        ..book(title, "")
    };
    let (kept, _) = c
        .create_title(sourced("こころ", "marc:1"), false)
        .await
        .unwrap();
    let outcomes = c
        .create_titles(vec![
            sourced("こころ", "marc:1"),
            sourced("それから", "marc:2"),
            sourced("  ", "marc:3"),
            // The same source twice in one batch: the first is created, the second finds it.
            sourced("門", "marc:4"),
            sourced("門", "marc:4"),
        ])
        .await
        .unwrap();
    let ok: Vec<_> = outcomes.iter().map(|o| o.as_ref().ok().cloned()).collect();
    assert_eq!(ok[0], Some((kept, false)));
    assert!(matches!(&ok[1], Some((_, true))));
    assert_eq!(
        outcomes[2].as_ref().unwrap_err().code,
        ErrorCode::InvalidInput
    );
    let (gate, created) = ok[3].clone().unwrap();
    assert!(created);
    assert_eq!(ok[4], Some((gate, false)));
    assert_eq!(c.counts().await.unwrap().0, 3);
    // The single title's `catalog.title.created`, and one `catalog.titles.imported` for
    // the batch (not one per title), written with them.
    assert_eq!(outbox::pending_count(c.db()).await.unwrap(), 2);

    // A batch longer than one INSERT statement's rows, half of it already stored: each
    // outcome is its own title's, in order.
    let many = |range: std::ops::Range<usize>| -> Vec<NewTitle> {
        range
            .map(|i| sourced(&format!("題 {i}"), &format!("bulk:{i}")))
            .collect()
    };
    let first = c.create_titles(many(0..250)).await.unwrap();
    assert!(first.iter().all(|o| matches!(o, Ok((_, true)))));
    let again = c.create_titles(many(125..575)).await.unwrap();
    assert_eq!(again.len(), 450);
    for (i, outcome) in again.iter().enumerate() {
        let (id, created) = outcome.as_ref().unwrap();
        if i + 125 < 250 {
            assert!(!created, "bulk:{}", i + 125);
            assert_eq!(Some(id), first[i + 125].as_ref().ok().map(|(id, _)| id));
        } else {
            assert!(created, "bulk:{}", i + 125);
        }
    }
    assert_eq!(c.counts().await.unwrap().0, 3 + 575);
}

async fn titles_another_writer_stored_are_indexed_in_one_go(backend: Backend) {
    let (c, _) = open(backend).await;
    c.create_title(book("坊っちゃん", "夏目漱石"), true)
        .await
        .unwrap();
    assert_eq!(c.catch_up_index().await.unwrap(), 0, "nothing missing");
    // A second writer without an index (a `kitsuki import` beside the embedded run).
    let other = Catalog::open_without_index(c.db().clone(), Arc::new(SystemClock))
        .await
        .unwrap();
    let news = (1..=3).map(|i| book(&format!("草枕 {i}"), "")).collect();
    for outcome in other.create_titles(news).await.unwrap() {
        assert!(outcome.unwrap().1);
    }
    assert_eq!(c.search("草枕", &all(), 1, 20).await.unwrap().total, 0);
    assert_eq!(c.catch_up_index().await.unwrap(), 3);
    assert_eq!(c.search("草枕", &all(), 1, 20).await.unwrap().total, 3);
    assert_eq!(c.catch_up_index().await.unwrap(), 0);
}

fn item_status(
    id: &str,
    barcode: &str,
    status: kitsuki_proto::catalog::ItemStatus,
    holds: u32,
) -> kitsuki_platform::bus::Event {
    // Events from before versions existed (0, 0).
    versioned_status(id, barcode, status, (0, holds, 0))
}

/// An item status event at `(item_version, holds_waiting, holds_version)`.
fn versioned_status(
    id: &str,
    barcode: &str,
    status: kitsuki_proto::catalog::ItemStatus,
    (item_version, holds, holds_version): (u64, u32, u64),
) -> kitsuki_platform::bus::Event {
    use prost::Message;
    let on_loan = status == kitsuki_proto::catalog::ItemStatus::OnLoan;
    let msg = kitsuki_proto::events::ItemStatusChanged {
        meta: None,
        barcode: barcode.into(),
        title_id: String::new(),
        status: status as i32,
        due_date: if on_loan || item_version == 0 {
            "2026-12-12".into()
        } else {
            String::new()
        },
        holds_waiting: holds,
        item_version,
        holds_version,
    };
    kitsuki_platform::bus::Event {
        id: id.into(),
        subject: "circulation.yamaga.item.status".into(),
        payload: msg.encode_to_vec(),
        headers: vec![],
    }
}

async fn item_status_events_update_availability_once(backend: Backend) {
    use kitsuki_platform::bus::{EventBus, MemoryBus};
    use kitsuki_proto::catalog::ItemStatus;
    let (c, _) = open(backend).await;
    let (id, _) = c
        .create_title(book("草枕", "夏目漱石"), true)
        .await
        .unwrap();
    c.create_item(
        &id,
        &Barcode::parse("YM-1").unwrap(),
        Branch::Yamaga,
        "",
        true,
    )
    .await
    .unwrap();
    let available_at_yamaga = SearchFilter {
        branch: Some("yamaga".into()),
        available_only: true,
        ..all()
    };
    assert_eq!(
        c.search("草枕", &available_at_yamaga, 1, 20)
            .await
            .unwrap()
            .total,
        1
    );

    // Through the real consumer loop on the in-process bus.
    let bus = std::sync::Arc::new(MemoryBus::new());
    let shutdown = kitsuki_platform::shutdown::Shutdown::new();
    let task = c.spawn_consumer(bus.clone(), &shutdown);
    bus.publish(&item_status("ev-1", "YM-1", ItemStatus::OnLoan, 2))
        .await
        .unwrap();
    // The consumer commits the database first, then refreshes the index: wait for both
    // (reading the database alone raced the index refresh on a fast machine).
    let mut detail = c.get_title(&id).await.unwrap();
    for _ in 0..100 {
        let on_shelf = c
            .search("草枕", &available_at_yamaga, 1, 20)
            .await
            .unwrap()
            .total;
        if detail.items[0].status == ItemStatus::OnLoan as i32 && on_shelf == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        detail = c.get_title(&id).await.unwrap();
    }
    assert_eq!(detail.items[0].status, ItemStatus::OnLoan as i32);
    assert_eq!(detail.items[0].due_date, "2026-12-12");
    assert_eq!(detail.title.unwrap().holds_waiting, 2);
    assert_eq!(
        c.search("草枕", &available_at_yamaga, 1, 20)
            .await
            .unwrap()
            .total,
        0,
        "H1: no copy on a shelf now"
    );
    shutdown.trigger();
    task.await.unwrap();

    // The same event again changes nothing (inbox); a newer one applies.
    c.record_item_status(&item_status("ev-2", "YM-1", ItemStatus::Available, 0))
        .await
        .unwrap();
    c.record_item_status(&item_status("ev-1", "YM-1", ItemStatus::OnLoan, 2))
        .await
        .unwrap();
    let detail = c.get_title(&id).await.unwrap();
    assert_eq!(detail.items[0].status, ItemStatus::Available as i32);
    c.index_settled().await;
    assert_eq!(
        c.search("草枕", &available_at_yamaga, 1, 20)
            .await
            .unwrap()
            .total,
        1
    );
    // Unknown items and unreadable events are skipped, not fatal.
    c.record_item_status(&item_status("ev-3", "NOPE", ItemStatus::OnLoan, 0))
        .await
        .unwrap();
}

/// The catalogue's copy of a title and its items as stored: (barcode, status, due date)
/// and the holds waiting.
async fn stored_state(c: &Catalog, title_id: &str) -> (Vec<(String, String, Option<String>)>, i64) {
    use sqlx::Row;
    let items = sqlx::query(
        "SELECT barcode, status, due_date FROM items WHERE title_id = $1 ORDER BY barcode",
    )
    .bind(title_id)
    .fetch_all(&c.db().pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get("barcode"), r.get("status"), r.get("due_date")))
    .collect();
    let holds: i64 = sqlx::query_scalar("SELECT holds_waiting FROM titles WHERE title_id = $1")
        .bind(title_id)
        .fetch_one(&c.db().pool)
        .await
        .unwrap();
    (items, holds)
}

async fn title_changed_events(c: &Catalog) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE subject = 'catalog.title.changed'")
        .fetch_one(&c.db().pool)
        .await
        .unwrap()
}

async fn item_status_versions_keep_the_newest(backend: Backend) {
    use kitsuki_proto::catalog::ItemStatus;
    let (c, _) = open(backend).await;
    let (id, _) = c
        .create_title(book("三四郎", "夏目漱石"), true)
        .await
        .unwrap();
    for barcode in ["YM-1", "YM-2"] {
        c.create_item(
            &id,
            &Barcode::parse(barcode).unwrap(),
            Branch::Yamaga,
            "",
            true,
        )
        .await
        .unwrap();
    }
    let on_loan = || {
        (
            "YM-1".to_string(),
            "on_loan".to_string(),
            Some("2026-12-12".to_string()),
        )
    };
    let shelved = |b: &str| (b.to_string(), "available".to_string(), None::<String>);

    // Newer first: checked out (item 2, holds 1 at 7), then the transit before it (item 1,
    // no holds at 6) arrives late and changes nothing.
    c.record_item_status(&versioned_status(
        "e1",
        "YM-1",
        ItemStatus::OnLoan,
        (2, 1, 7),
    ))
    .await
    .unwrap();
    let events = title_changed_events(&c).await;
    c.record_item_status(&versioned_status(
        "e2",
        "YM-1",
        ItemStatus::InTransit,
        (1, 0, 6),
    ))
    .await
    .unwrap();
    assert_eq!(
        stored_state(&c, &id).await,
        (vec![on_loan(), shelved("YM-2")], 1)
    );
    assert_eq!(
        title_changed_events(&c).await,
        events,
        "an ignored event tells no replica to re-index"
    );

    // An equal version is ignored too (the same state under another event id).
    c.record_item_status(&versioned_status(
        "e3",
        "YM-1",
        ItemStatus::Available,
        (2, 0, 7),
    ))
    .await
    .unwrap();
    assert_eq!(
        stored_state(&c, &id).await,
        (vec![on_loan(), shelved("YM-2")], 1)
    );

    // The parts are versioned apart: a newer item state with an older holds count changes
    // the item and keeps the count.
    c.record_item_status(&versioned_status(
        "e4",
        "YM-1",
        ItemStatus::Available,
        (3, 0, 5),
    ))
    .await
    .unwrap();
    assert_eq!(
        stored_state(&c, &id).await,
        (vec![shelved("YM-1"), shelved("YM-2")], 1)
    );
    // Holds waiting are per title: the event of another copy with a newer holds version
    // carries the count, and its older item state (none applied yet for YM-2 is older than
    // 1) applies.
    c.record_item_status(&versioned_status(
        "e5",
        "YM-2",
        ItemStatus::OnLoan,
        (1, 0, 8),
    ))
    .await
    .unwrap();
    let lent_2 = (
        "YM-2".to_string(),
        "on_loan".to_string(),
        Some("2026-12-12".to_string()),
    );
    assert_eq!(
        stored_state(&c, &id).await,
        (vec![shelved("YM-1"), lent_2.clone()], 0)
    );

    // An event from before versions (0) no longer applies once a versioned one did.
    c.record_item_status(&item_status("e6", "YM-1", ItemStatus::InTransit, 4))
        .await
        .unwrap();
    assert_eq!(
        stored_state(&c, &id).await,
        (vec![shelved("YM-1"), lent_2], 0)
    );

    // Search follows what was applied.
    c.index_settled().await;
    let available_at_yamaga = SearchFilter {
        branch: Some("yamaga".into()),
        available_only: true,
        ..all()
    };
    assert_eq!(
        c.search("三四郎", &available_at_yamaga, 1, 20)
            .await
            .unwrap()
            .total,
        1
    );
}

/// The real IPADIC of Debian's mecab-ipadic (the test command installs it), loaded once
/// for every test of this file.
fn reading_generator() -> Arc<kitsuki_catalog::readings::ReadingGenerator> {
    static GENERATOR: std::sync::OnceLock<Arc<kitsuki_catalog::readings::ReadingGenerator>> =
        std::sync::OnceLock::new();
    GENERATOR
        .get_or_init(|| {
            let dir = kitsuki_catalog::readings::ipadic_dir();
            let generator = kitsuki_catalog::readings::ReadingGenerator::load(&dir, None)
                .unwrap_or_else(|e| panic!("{e}: `bash scripts/ensure-japanese-data` installs it"));
            Arc::new(generator)
        })
        .clone()
}

async fn readings_are_generated_marked_and_searched(backend: Backend) {
    let (c, _) = open(backend).await;
    c.use_readings(reading_generator());
    let (anne, _) = c
        .create_title(
            book("アンの愛情", "Montgomery, Lucy Maud ; 掛川, 恭子"),
            true,
        )
        .await
        .unwrap();
    let (nishikie, _) = c
        .create_title(book("錦絵の世界", "夏目, 漱石"), true)
        .await
        .unwrap();
    let mut given = book("こゝろ", "夏目漱石");
    given.title_reading = "こころ".into();
    let (kokoro, _) = c.create_title(given, true).await.unwrap();

    let detail = c.get_title(&anne).await.unwrap();
    assert_eq!(detail.title.unwrap().title_reading, "あんのあいじょう");
    let source = |id: String| {
        let pool = c.db().pool.clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT reading_source FROM titles WHERE title_id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(source(anne.clone()).await, "generated");
    assert_eq!(source(kokoro.clone()).await, "given");

    for (q, want) in [
        ("あんのあいじょう", &anne),
        ("annoaijou", &anne),
        ("にしきえ", &nishikie),
        ("かけがわ", &anne),
        ("natsume souseki", &nishikie),
        ("なつめそうせき", &nishikie),
    ] {
        let ids: Vec<String> = c
            .search(q, &all(), 1, 20)
            .await
            .unwrap()
            .hits
            .into_iter()
            .map(|h| h.title_id)
            .collect();
        assert!(ids.contains(want), "{q}: {ids:?}");
    }
    // A reading the record gave is kept, not replaced by a generated one.
    let detail = c.get_title(&kokoro).await.unwrap();
    assert_eq!(detail.title.unwrap().title_reading, "こころ");
}

async fn regenerating_readings_fills_and_refreshes_only_generated_ones(backend: Backend) {
    let (c, _) = open(backend).await;
    // Created before any dictionary: no readings.
    let (nishikie, _) = c
        .create_title(book("錦絵の世界", "夏目, 漱石"), true)
        .await
        .unwrap();
    let mut given = book("こゝろ", "夏目漱石");
    given.title_reading = "こころ".into();
    let (kokoro, _) = c.create_title(given, true).await.unwrap();
    assert_eq!(c.search("にしきえ", &all(), 1, 20).await.unwrap().total, 0);
    assert!(
        c.regenerate_readings().await.is_err(),
        "no dictionary, no regeneration"
    );

    c.use_readings(reading_generator());
    let s = c.regenerate_readings().await.unwrap();
    assert_eq!((s.titles, s.changed), (2, 2), "{s:?}");
    let detail = c.get_title(&nishikie).await.unwrap();
    assert_eq!(detail.title.unwrap().title_reading, "にしきえのせかい");
    let detail = c.get_title(&kokoro).await.unwrap();
    assert_eq!(
        detail.title.unwrap().title_reading,
        "こころ",
        "a given reading stays"
    );
    let ids: Vec<String> = c
        .search("にしきえ", &all(), 1, 20)
        .await
        .unwrap()
        .hits
        .into_iter()
        .map(|h| h.title_id)
        .collect();
    assert_eq!(ids, vec![nishikie.clone()]);
    assert_eq!(
        c.search("natsume souseki", &all(), 1, 20)
            .await
            .unwrap()
            .total,
        2
    );
    // Nothing changed since: a second run changes nothing.
    let again = c.regenerate_readings().await.unwrap();
    assert_eq!((again.titles, again.changed), (2, 0));
}

on_both_backends!(
    create_read_search_and_availability,
    refusals_have_codes,
    events_are_written_with_the_change,
    source_ids_make_reimport_idempotent_and_index_rebuilds,
    item_status_events_update_availability_once,
    item_status_versions_keep_the_newest,
    a_batch_of_titles_is_one_transaction_with_each_outcome,
    titles_another_writer_stored_are_indexed_in_one_go,
    readings_are_generated_marked_and_searched,
    regenerating_readings_fills_and_refreshes_only_generated_ones,
);
