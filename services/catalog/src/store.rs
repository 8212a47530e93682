//! SQL of the catalog (portable between PostgreSQL and SQLite through sqlx `Any`).

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Row};

use crate::model::{Item, MaterialType, Title};

const TITLE_COLUMNS: &str = "title_id, title, title_reading, author, author_reading, reading_source, responsibility, ndc, publisher, year, isbn, material_type, aliases, source_id, created_at, holds_waiting";

fn title_from_row(r: &AnyRow) -> Result<Title, sqlx::Error> {
    let kind: String = r.try_get("material_type")?;
    let aliases: String = r.try_get("aliases")?;
    Ok(Title {
        title_id: r.try_get("title_id")?,
        title: r.try_get("title")?,
        title_reading: r.try_get("title_reading")?,
        author: r.try_get("author")?,
        author_reading: r.try_get("author_reading")?,
        reading_source: r.try_get("reading_source")?,
        responsibility: r.try_get("responsibility")?,
        ndc: r.try_get("ndc")?,
        publisher: r.try_get("publisher")?,
        year: r.try_get("year")?,
        isbn: r.try_get("isbn")?,
        material_type: MaterialType::parse(&kind).unwrap_or(MaterialType::Book),
        aliases: aliases
            .split('\n')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        source_id: r.try_get("source_id")?,
        created_at: r.try_get("created_at")?,
        holds_waiting: r.try_get::<i64, _>("holds_waiting")?.max(0) as u64,
    })
}

fn item_from_row(r: &AnyRow) -> Result<Item, sqlx::Error> {
    Ok(Item {
        barcode: r.try_get("barcode")?,
        title_id: r.try_get("title_id")?,
        branch: r.try_get("branch")?,
        call_number: r.try_get("call_number")?,
        status: r.try_get("status")?,
        due_date: r.try_get("due_date")?,
    })
}

/// Takes the next `n` (at least 1) numbers of the catalogue change sequence; answers the
/// first (the others follow it). Call it before the transaction's other catalog writes:
/// the `catalog_state` row is then always the first lock a catalog write takes (no
/// deadlock with a title row), and it is held to the commit, so on PostgreSQL commits come
/// in sequence order and no number below a committed one can commit later (the index's
/// watermark relies on that, ARCHITECTURE.md "Search index").
pub async fn take_change_seqs(conn: &mut AnyConnection, n: i64) -> Result<i64, sqlx::Error> {
    let last: i64 = sqlx::query(
        "UPDATE catalog_state SET change_seq = change_seq + $1 WHERE id = 1 RETURNING change_seq",
    )
    .bind(n)
    .fetch_one(conn)
    .await?
    .try_get("change_seq")?;
    Ok(last - n + 1)
}

/// Stores a change sequence number on a title (its search document changed).
pub async fn set_change_seq(
    conn: &mut AnyConnection,
    title_id: &str,
    seq: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE titles SET change_seq = $1 WHERE title_id = $2")
        .bind(seq)
        .bind(title_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The highest change sequence number handed out so far.
pub async fn last_change_seq(pool: &AnyPool) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT change_seq FROM catalog_state WHERE id = 1")
        .fetch_one(pool)
        .await?
        .try_get("change_seq")
}

/// Rows of one multi-row `INSERT` of [`insert_titles`] on PostgreSQL: 16 values each, far
/// below the 65,535 parameters it accepts in one statement.
const INSERT_ROWS: usize = 200;

/// The same on SQLite, far fewer: binding the values of a statement costs SQLite time
/// quadratic in its number of parameters (sqlx asks `sqlite3_bind_parameter_name` for
/// each, which walks the statement's list of names), so 200 rows of 16 were a quarter of
/// a 250,000-title import's CPU (`perf`: 25 % in that one function).
const SQLITE_INSERT_ROWS: usize = 25;

/// Inserts titles, each with its change sequence number, [`INSERT_ROWS`] to a statement
/// ([`SQLITE_INSERT_ROWS`] on SQLite);
/// answers the ids of those created (a title whose `source_id` exists is not: re-import).
/// The one INSERT of titles (a single title is a batch of one). One statement per title
/// made a PostgreSQL import a round trip per record (2,955
/// records/s at 250,000 titles, against 7,060 on SQLite).
pub async fn insert_titles(
    conn: &mut AnyConnection,
    titles: &[(&Title, i64)],
) -> Result<std::collections::HashSet<String>, sqlx::Error> {
    const COLUMNS: usize = 16;
    let mut created = std::collections::HashSet::with_capacity(titles.len());
    let rows = if conn.backend_name().eq_ignore_ascii_case("sqlite") {
        SQLITE_INSERT_ROWS
    } else {
        INSERT_ROWS
    };
    for chunk in titles.chunks(rows) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|r| {
                let first = r * COLUMNS;
                let params: Vec<String> =
                    (1..=COLUMNS).map(|c| format!("${}", first + c)).collect();
                format!("({})", params.join(", "))
            })
            .collect();
        // Built from counts only; every value is bound.
        let sql = format!(
            "INSERT INTO titles (title_id, title, title_reading, author, author_reading, reading_source, responsibility, ndc, publisher, year, isbn, material_type, aliases, source_id, created_at, change_seq) \
             VALUES {} ON CONFLICT DO NOTHING RETURNING title_id",
            rows.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (t, change_seq) in chunk {
            query = query
                .bind(&t.title_id)
                .bind(&t.title)
                .bind(&t.title_reading)
                .bind(&t.author)
                .bind(&t.author_reading)
                .bind(&t.reading_source)
                .bind(&t.responsibility)
                .bind(&t.ndc)
                .bind(&t.publisher)
                .bind(t.year)
                .bind(&t.isbn)
                .bind(t.material_type.code())
                .bind(t.aliases.join("\n"))
                .bind(&t.source_id)
                .bind(&t.created_at)
                .bind(*change_seq);
        }
        for row in query.fetch_all(&mut *conn).await? {
            created.insert(row.try_get::<String, _>("title_id")?);
        }
    }
    Ok(created)
}

/// Stores readings staff gave (`reading_source = 'given'`; an empty author reading keeps
/// the stored one) with the title's new change number; the stored readings and source, or
/// `None` for an unknown title.
pub async fn set_readings(
    conn: &mut AnyConnection,
    title_id: &str,
    title_reading: &str,
    author_reading: &str,
    change_seq: i64,
) -> Result<Option<(String, String, String)>, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE titles SET title_reading = $1, \
         author_reading = CASE WHEN $2 = '' THEN author_reading ELSE $2 END, \
         reading_source = 'given', change_seq = $3 WHERE title_id = $4 \
         RETURNING title_reading, author_reading, reading_source",
    )
    .bind(title_reading)
    .bind(author_reading)
    .bind(change_seq)
    .bind(title_id)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok((
            r.try_get("title_reading")?,
            r.try_get("author_reading")?,
            r.try_get("reading_source")?,
        ))
    })
    .transpose()
}

/// Up to `limit` titles with ids after `after`, in id order: a walk over the whole
/// catalogue a page at a time.
pub async fn titles_after(
    pool: &AnyPool,
    after: &str,
    limit: i64,
) -> Result<Vec<Title>, sqlx::Error> {
    let sql = format!(
        "SELECT {TITLE_COLUMNS} FROM titles WHERE title_id > $1 ORDER BY title_id LIMIT $2"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await?
        .iter()
        .map(title_from_row)
        .collect()
}

/// Replaces a title's readings and their source with the title's new change number, only
/// where the source is still `was` (a staff correction meanwhile is kept); whether it did.
pub async fn replace_readings(
    conn: &mut AnyConnection,
    title_id: &str,
    readings: (&str, &str, &str),
    was: &str,
    change_seq: i64,
) -> Result<bool, sqlx::Error> {
    let (title_reading, author_reading, source) = readings;
    let done = sqlx::query(
        "UPDATE titles SET title_reading = $1, author_reading = $2, reading_source = $3, \
         change_seq = $4 WHERE title_id = $5 AND reading_source = $6",
    )
    .bind(title_reading)
    .bind(author_reading)
    .bind(source)
    .bind(change_seq)
    .bind(title_id)
    .bind(was)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn title_id_by_source(
    pool: &AnyPool,
    source_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query("SELECT title_id FROM titles WHERE source_id = $1")
        .bind(source_id)
        .fetch_optional(pool)
        .await?;
    row.map(|r| r.try_get("title_id")).transpose()
}

pub async fn get_title(pool: &AnyPool, title_id: &str) -> Result<Option<Title>, sqlx::Error> {
    let sql = format!("SELECT {TITLE_COLUMNS} FROM titles WHERE title_id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(title_id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(title_from_row).transpose()
}

/// Placeholders `$1, …, $n` for an IN list (built from a count, never from input).
fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Most values bound in one `IN (…)` list: SQLite refuses more than 32,766 variables and
/// PostgreSQL more than 65,535 parameters, so a list of every imported id failed (issue 9).
pub const MAX_IN_LIST: usize = 500;

pub async fn get_titles(pool: &AnyPool, ids: &[String]) -> Result<Vec<Title>, sqlx::Error> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(MAX_IN_LIST) {
        let sql = format!(
            "SELECT {TITLE_COLUMNS} FROM titles WHERE title_id IN ({})",
            placeholders(chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(id);
        }
        for row in q.fetch_all(pool).await? {
            out.push(title_from_row(&row)?);
        }
    }
    Ok(out)
}

/// The items of these titles, by branch and barcode within each chunk of
/// [`MAX_IN_LIST`] titles.
pub async fn items_of(pool: &AnyPool, title_ids: &[String]) -> Result<Vec<Item>, sqlx::Error> {
    let mut out = Vec::new();
    for chunk in title_ids.chunks(MAX_IN_LIST) {
        let sql = format!(
            "SELECT barcode, title_id, branch, call_number, status, due_date FROM items WHERE title_id IN ({}) ORDER BY branch, barcode",
            placeholders(chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(id);
        }
        for row in q.fetch_all(pool).await? {
            out.push(item_from_row(&row)?);
        }
    }
    Ok(out)
}

/// Inserts an item; a duplicate barcode is a unique violation for the caller to map.
pub async fn insert_item(
    conn: &mut AnyConnection,
    item: &Item,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO items (barcode, title_id, branch, call_number, status, due_date, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&item.barcode)
    .bind(&item.title_id)
    .bind(&item.branch)
    .bind(&item.call_number)
    .bind(&item.status)
    .bind(&item.due_date)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn counts(pool: &AnyPool) -> Result<(u64, u64), sqlx::Error> {
    let t: i64 = sqlx::query("SELECT COUNT(*) AS n FROM titles")
        .fetch_one(pool)
        .await?
        .try_get("n")?;
    let i: i64 = sqlx::query("SELECT COUNT(*) AS n FROM items")
        .fetch_one(pool)
        .await?
        .try_get("n")?;
    Ok((t.max(0) as u64, i.max(0) as u64))
}

/// A page of the titles changed after change sequence number `after`, in sequence order,
/// each with its number: the index's catch-up.
pub async fn titles_changed_after(
    pool: &AnyPool,
    after: i64,
    limit: i64,
) -> Result<Vec<(i64, Title)>, sqlx::Error> {
    let sql = format!(
        "SELECT {TITLE_COLUMNS}, change_seq FROM titles WHERE change_seq > $1 ORDER BY change_seq LIMIT $2"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("change_seq")?, title_from_row(r)?)))
        .collect()
}

/// Circulation's view of an item, from one `ItemStatusChanged`: its status and due date
/// at `item_version`, its title's holds waiting at `holds_version` (ARCHITECTURE.md
/// "Versions of a copy's events").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemStatusUpdate<'a> {
    pub barcode: &'a str,
    pub status: &'a str,
    pub due_date: Option<&'a str>,
    pub holds_waiting: i64,
    pub item_version: u64,
    pub holds_version: u64,
}

/// What [`apply_item_status`] changed of a known item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemStatusApplied {
    pub title_id: String,
    /// The item's status and due date were written (the event's item version was newer).
    pub item: bool,
    /// The title's holds waiting were written (the event's holds version was newer).
    pub holds: bool,
}

impl ItemStatusApplied {
    /// Whether anything was written (else the event was older than what is stored).
    pub fn changed(&self) -> bool {
        self.item || self.holds
    }
}

/// The version check of one part of an event: a higher version than the stored one, or, for
/// an event from before versions (0), nothing versioned stored yet (the old rule, the last
/// event wins, until the first versioned one).
fn newer_than(column: &str, placeholder: &str, version: u64) -> (String, i64) {
    let v = i64::try_from(version).unwrap_or(i64::MAX);
    if v == 0 {
        (format!("{column} = 0"), v)
    } else {
        (format!("{column} < {placeholder}"), v)
    }
}

/// Applies circulation's view of an item (status and due date) and of its title's holds,
/// each only if its version is newer than the one stored. None when the item is unknown
/// here.
pub async fn apply_item_status(
    conn: &mut AnyConnection,
    update: &ItemStatusUpdate<'_>,
) -> Result<Option<ItemStatusApplied>, sqlx::Error> {
    let row = sqlx::query("SELECT title_id FROM items WHERE barcode = $1")
        .bind(update.barcode)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let title_id: String = row.try_get("title_id")?;
    // The title's search document may change (change sequence, ARCHITECTURE.md "Search
    // index"). Taken first, before any row of items or titles, as every catalogue writer
    // does: one lock order, no deadlock with `create_item`. A stale event leaves a gap in
    // the sequence, which a catch-up passes over.
    let change_seq = take_change_seqs(&mut *conn, 1).await?;
    // Conditional updates: the row's lock orders two consumers applying events of the same
    // copy at once, and the later one re-checks the version it meets.
    let (check, version) = newer_than("status_version", "$4", update.item_version);
    let sql = format!(
        "UPDATE items SET status = $1, due_date = $2, status_version = $4 WHERE barcode = $3 AND {check}"
    );
    let item = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(update.status)
        .bind(update.due_date)
        .bind(update.barcode)
        .bind(version)
        .execute(&mut *conn)
        .await?
        .rows_affected()
        == 1;
    let (check, version) = newer_than("holds_version", "$3", update.holds_version);
    let sql = format!(
        "UPDATE titles SET holds_waiting = $1, holds_version = $3 WHERE title_id = $2 AND {check}"
    );
    let holds = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(update.holds_waiting)
        .bind(&title_id)
        .bind(version)
        .execute(&mut *conn)
        .await?
        .rows_affected()
        == 1;
    if item || holds {
        set_change_seq(&mut *conn, &title_id, change_seq).await?;
    }
    Ok(Some(ItemStatusApplied {
        title_id,
        item,
        holds,
    }))
}
