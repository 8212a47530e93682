//! SQL of circulation, portable between PostgreSQL and SQLite through sqlx `Any` (see
//! `kitsuki_platform::db` for the conventions). Every function takes a connection, so that
//! the service decides what runs in one transaction; rows come back as the core's types
//! (`domain`) wherever the core has one.
//!
//! The guards (ARCHITECTURE.md "Data"): [`lock_title`] and [`lock_patron`] are the first
//! writes of a transaction. On PostgreSQL each takes a row lock held until commit, so every
//! transaction on one title's queue and items (or on one patron's loans and holds) waits for
//! the one before it and then reads what it committed (READ COMMITTED reads afresh per
//! statement). On SQLite the service opens write transactions with `BEGIN IMMEDIATE`, which
//! serialises them all. Unique indexes back the guards up: one item per hold
//! (`items.hold_id`), one active hold per item and per patron and title, one sequence number
//! per title's queue.

use kitsuki_platform::clock::{format_date, parse_instant};
use kitsuki_platform::db::flag;
use kitsuki_proto::{Barcode, Branch, CardNumber, TitleId};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use time::{Date, OffsetDateTime};

use crate::domain::holds::{CancelledBy, Hold, HoldState, HoldStatus};
use crate::domain::loans::Loan;
use crate::domain::privacy::ReturnedLoan;
use crate::domain::{HoldId, MaterialType};

/// Where an item is (API.md item status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemStatus {
    Available,
    OnLoan,
    InTransit,
    OnHoldShelf,
}

impl ItemStatus {
    pub fn code(self) -> &'static str {
        match self {
            ItemStatus::Available => "available",
            ItemStatus::OnLoan => "on_loan",
            ItemStatus::InTransit => "in_transit",
            ItemStatus::OnHoldShelf => "on_hold_shelf",
        }
    }

    pub fn parse(s: &str) -> Option<ItemStatus> {
        [
            ItemStatus::Available,
            ItemStatus::OnLoan,
            ItemStatus::InTransit,
            ItemStatus::OnHoldShelf,
        ]
        .into_iter()
        .find(|x| x.code() == s)
    }

    pub fn to_proto(self) -> kitsuki_proto::catalog::ItemStatus {
        use kitsuki_proto::catalog::ItemStatus as P;
        match self {
            ItemStatus::Available => P::Available,
            ItemStatus::OnLoan => P::OnLoan,
            ItemStatus::InTransit => P::InTransit,
            ItemStatus::OnHoldShelf => P::OnHoldShelf,
        }
    }
}

/// An item of the projection and where it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRow {
    pub barcode: Barcode,
    pub title: TitleId,
    pub home: Branch,
    pub status: ItemStatus,
    /// The branch whose shelf holds it, or which sent it into transit; none while on loan.
    pub location: Option<Branch>,
    pub transit_to: Option<Branch>,
    pub hold_id: Option<HoldId>,
    pub due_date: Option<Date>,
    pub updated_at: String,
}

/// How a hold was placed (H4, S1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Web,
    Counter(Branch),
}

impl Origin {
    pub fn code(self) -> &'static str {
        match self {
            Origin::Web => "web",
            Origin::Counter(_) => "counter",
        }
    }
}

/// A hold as stored: the core's [`Hold`] and what the shell keeps beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRow {
    pub hold: Hold,
    pub receipt_mail: bool,
    pub origin: Origin,
    /// The `ready_to_notify` event's id, which the ready mail's `MailSent` names (H8).
    pub notice_event_id: Option<String>,
    /// A rejection's or a library cancellation's reason.
    pub reason: Option<String>,
    /// The released item still sits on the pickup branch's hold shelf (S1 list).
    pub off_shelf_pending: bool,
    pub updated_at: String,
}

/// A current loan as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoanRow {
    pub loan_id: String,
    pub loan: Loan,
}

/// What H1 needs of a title.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TitleCounts {
    pub material: MaterialType,
    pub copies: usize,
    pub copies_on_shelf: usize,
}

fn corrupt(what: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("unreadable {what} in the circulation database").into())
}

fn parse_date(s: &str) -> Option<Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, &format).ok()
}

fn date_col(r: &AnyRow, c: &str) -> Result<Option<Date>, sqlx::Error> {
    let s: Option<String> = r.try_get(c)?;
    s.map(|s| parse_date(&s).ok_or_else(|| corrupt(c)))
        .transpose()
}

fn instant_col(r: &AnyRow, c: &str) -> Result<Option<OffsetDateTime>, sqlx::Error> {
    let s: Option<String> = r.try_get(c)?;
    s.map(|s| parse_instant(&s).ok_or_else(|| corrupt(c)))
        .transpose()
}

fn branch_col(r: &AnyRow, c: &str) -> Result<Option<Branch>, sqlx::Error> {
    let s: Option<String> = r.try_get(c)?;
    s.map(|s| Branch::parse(&s).map_err(|_| corrupt(c)))
        .transpose()
}

fn req<T>(v: Option<T>, c: &str) -> Result<T, sqlx::Error> {
    v.ok_or_else(|| corrupt(c))
}

fn title_col(r: &AnyRow, c: &str) -> Result<TitleId, sqlx::Error> {
    let s: String = r.try_get(c)?;
    TitleId::parse(&s).map_err(|_| corrupt(c))
}

fn barcode_col(r: &AnyRow, c: &str) -> Result<Option<Barcode>, sqlx::Error> {
    let s: Option<String> = r.try_get(c)?;
    s.map(|s| Barcode::parse(&s).map_err(|_| corrupt(c)))
        .transpose()
}

fn bool_col(r: &AnyRow, c: &str) -> Result<bool, sqlx::Error> {
    Ok(r.try_get::<i64, _>(c)? != 0)
}

fn material_col(r: &AnyRow, c: &str) -> Result<MaterialType, sqlx::Error> {
    let s: String = r.try_get(c)?;
    MaterialType::parse(&s).ok_or_else(|| corrupt(c))
}

// ---- guards -------------------------------------------------------------------------

/// The title guard: bumps the title's version, taking its row lock until commit. False when
/// circulation does not know the title.
pub async fn lock_title(conn: &mut AnyConnection, title: &TitleId) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE titles SET version = version + 1 WHERE title_id = $1")
        .bind(title.as_str())
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The patron guard (L3, H11), taken after the title's.
pub async fn lock_patron(conn: &mut AnyConnection, card: &CardNumber) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO patron_locks (card_number, version) VALUES ($1, 1)
         ON CONFLICT (card_number) DO UPDATE SET version = patron_locks.version + 1",
    )
    .bind(card.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// Rule H6: the next sequence number of the title's queue, under the title's lock.
pub async fn next_hold_seq(conn: &mut AnyConnection, title: &TitleId) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE titles SET hold_seq = hold_seq + 1 WHERE title_id = $1 RETURNING hold_seq",
    )
    .bind(title.as_str())
    .fetch_one(conn)
    .await
}

// ---- titles and items ------------------------------------------------------------------

/// Adds a title from a catalog event, or corrects its material type.
pub async fn upsert_title(
    conn: &mut AnyConnection,
    title: &TitleId,
    material: MaterialType,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO titles (title_id, material_type, hold_seq, version) VALUES ($1, $2, 0, 0)
         ON CONFLICT (title_id) DO UPDATE SET material_type = excluded.material_type",
    )
    .bind(title.as_str())
    .bind(material.code())
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn title_material(
    conn: &mut AnyConnection,
    title: &TitleId,
) -> Result<Option<MaterialType>, sqlx::Error> {
    let row = sqlx::query("SELECT material_type FROM titles WHERE title_id = $1")
        .bind(title.as_str())
        .fetch_optional(conn)
        .await?;
    row.map(|r| material_col(&r, "material_type")).transpose()
}

/// H1: the title's type, copies and copies on an open shelf; `None` for an unknown title.
pub async fn title_counts(
    conn: &mut AnyConnection,
    title: &TitleId,
) -> Result<Option<TitleCounts>, sqlx::Error> {
    let Some(material) = title_material(&mut *conn, title).await? else {
        return Ok(None);
    };
    let row = sqlx::query(
        "SELECT COUNT(*) AS copies,
                COALESCE(SUM(CASE WHEN status = 'available' THEN 1 ELSE 0 END), 0) AS on_shelf
         FROM items WHERE title_id = $1",
    )
    .bind(title.as_str())
    .fetch_one(conn)
    .await?;
    let copies: i64 = row.try_get("copies")?;
    let on_shelf: i64 = row.try_get("on_shelf")?;
    Ok(Some(TitleCounts {
        material,
        copies: usize::try_from(copies).unwrap_or(0),
        copies_on_shelf: usize::try_from(on_shelf).unwrap_or(0),
    }))
}

/// Inserts an item of the projection, available on its home shelf; false when it exists.
pub async fn insert_item(
    conn: &mut AnyConnection,
    barcode: &Barcode,
    title: &TitleId,
    home: Branch,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO items (barcode, title_id, home_branch, status, location, created_at, updated_at)
         VALUES ($1, $2, $3, 'available', $3, $4, $4) ON CONFLICT DO NOTHING",
    )
    .bind(barcode.as_str())
    .bind(title.as_str())
    .bind(home.code())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

const ITEM_COLUMNS: &str =
    "barcode, title_id, home_branch, status, location, transit_to, hold_id, due_date, updated_at";

fn item_from_row(r: &AnyRow) -> Result<ItemRow, sqlx::Error> {
    let status: String = r.try_get("status")?;
    let hold_id: Option<String> = r.try_get("hold_id")?;
    Ok(ItemRow {
        barcode: req(barcode_col(r, "barcode")?, "barcode")?,
        title: title_col(r, "title_id")?,
        home: req(branch_col(r, "home_branch")?, "home_branch")?,
        status: ItemStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        location: branch_col(r, "location")?,
        transit_to: branch_col(r, "transit_to")?,
        hold_id: hold_id.map(HoldId::new),
        due_date: date_col(r, "due_date")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub async fn get_item(
    conn: &mut AnyConnection,
    barcode: &Barcode,
) -> Result<Option<ItemRow>, sqlx::Error> {
    let sql = format!("SELECT {ITEM_COLUMNS} FROM items WHERE barcode = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(barcode.as_str())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(item_from_row).transpose()
}

pub async fn items_of_title(
    conn: &mut AnyConnection,
    title: &TitleId,
) -> Result<Vec<ItemRow>, sqlx::Error> {
    let sql = format!("SELECT {ITEM_COLUMNS} FROM items WHERE title_id = $1 ORDER BY barcode");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(title.as_str())
        .fetch_all(conn)
        .await?
        .iter()
        .map(item_from_row)
        .collect()
}

/// Writes where an item is now.
pub async fn update_item(
    conn: &mut AnyConnection,
    item: &ItemRow,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE items SET status = $2, location = $3, transit_to = $4, hold_id = $5,
                due_date = $6, updated_at = $7
         WHERE barcode = $1",
    )
    .bind(item.barcode.as_str())
    .bind(item.status.code())
    .bind(item.location.map(|b| b.code()))
    .bind(item.transit_to.map(|b| b.code()))
    .bind(item.hold_id.as_ref().map(|h| h.as_str().to_string()))
    .bind(item.due_date.map(format_date))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The next version of an item's state, with that state as it is now (ARCHITECTURE.md
/// "Versions of a copy's events"). One statement: the increment takes the row's lock
/// (PostgreSQL waits for any other writer of the row to commit and then reads its row), so
/// the state returned is the one this version stands for, and versions follow commit order.
pub async fn next_item_version(
    conn: &mut AnyConnection,
    barcode: &Barcode,
) -> Result<Option<(ItemRow, u64)>, sqlx::Error> {
    let sql = format!(
        "UPDATE items SET version = version + 1 WHERE barcode = $1 RETURNING {ITEM_COLUMNS}, version"
    );
    let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(barcode.as_str())
        .fetch_optional(conn)
        .await?
    else {
        return Ok(None);
    };
    let version: i64 = row.try_get("version")?;
    let version = u64::try_from(version).map_err(|_| corrupt("version"))?;
    Ok(Some((item_from_row(&row)?, version)))
}

/// The next version of a title's holds count: the title guard's own counter, incremented
/// again under its lock (every change of the title's holds or items bumps it first, so the
/// count read after this in the same transaction is the one this version stands for).
pub async fn next_holds_version(
    conn: &mut AnyConnection,
    title: &TitleId,
) -> Result<Option<u64>, sqlx::Error> {
    let v: Option<i64> = sqlx::query_scalar(
        "UPDATE titles SET version = version + 1 WHERE title_id = $1 RETURNING version",
    )
    .bind(title.as_str())
    .fetch_optional(conn)
    .await?;
    v.map(|v| u64::try_from(v).map_err(|_| corrupt("version")))
        .transpose()
}

/// Items in transit addressed to `branch` (incoming) or sent from it (outgoing), oldest first.
pub async fn transits(
    conn: &mut AnyConnection,
    branch: Branch,
    incoming: bool,
) -> Result<Vec<ItemRow>, sqlx::Error> {
    let column = if incoming { "transit_to" } else { "location" };
    let sql = format!(
        "SELECT {ITEM_COLUMNS} FROM items WHERE status = 'in_transit' AND {column} = $1
         ORDER BY updated_at, barcode"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(branch.code())
        .fetch_all(conn)
        .await?
        .iter()
        .map(item_from_row)
        .collect()
}

/// Copies on the open shelf of `branch` of titles with a confirmed hold waiting for an item:
/// the candidates of the pull list (S1), by title.
pub async fn pullable_items(
    conn: &mut AnyConnection,
    branch: Branch,
) -> Result<Vec<ItemRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {ITEM_COLUMNS} FROM items i WHERE i.status = 'available' AND i.location = $1
           AND EXISTS (SELECT 1 FROM holds h WHERE h.title_id = i.title_id AND h.status = 'confirmed')
         ORDER BY i.title_id, i.barcode"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(branch.code())
        .fetch_all(conn)
        .await?
        .iter()
        .map(item_from_row)
        .collect()
}

// ---- loans --------------------------------------------------------------------------

const LOAN_COLUMNS: &str = "loan_id, barcode, title_id, material_type, card_number, branch, checked_out_at, due_date, renewed";

fn loan_from_row(r: &AnyRow) -> Result<LoanRow, sqlx::Error> {
    let card: String = r.try_get("card_number")?;
    Ok(LoanRow {
        loan_id: r.try_get("loan_id")?,
        loan: Loan {
            barcode: req(barcode_col(r, "barcode")?, "barcode")?,
            title: title_col(r, "title_id")?,
            material: material_col(r, "material_type")?,
            patron: CardNumber::parse(&card).map_err(|_| corrupt("card_number"))?,
            branch: req(branch_col(r, "branch")?, "branch")?,
            checked_out_at: req(instant_col(r, "checked_out_at")?, "checked_out_at")?,
            due_date: req(date_col(r, "due_date")?, "due_date")?,
            renewed: bool_col(r, "renewed")?,
        },
    })
}

pub async fn insert_loan(conn: &mut AnyConnection, row: &LoanRow) -> Result<(), sqlx::Error> {
    let l = &row.loan;
    sqlx::query(
        "INSERT INTO loans (loan_id, barcode, title_id, material_type, card_number, branch, checked_out_at, due_date, renewed)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&row.loan_id)
    .bind(l.barcode.as_str())
    .bind(l.title.as_str())
    .bind(l.material.code())
    .bind(l.patron.as_str())
    .bind(l.branch.code())
    .bind(kitsuki_platform::clock::format_instant(l.checked_out_at))
    .bind(format_date(l.due_date))
    .bind(flag(l.renewed))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_loan(
    conn: &mut AnyConnection,
    loan_id: &str,
) -> Result<Option<LoanRow>, sqlx::Error> {
    let sql = format!("SELECT {LOAN_COLUMNS} FROM loans WHERE loan_id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(loan_id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(loan_from_row).transpose()
}

pub async fn loan_of_item(
    conn: &mut AnyConnection,
    barcode: &Barcode,
) -> Result<Option<LoanRow>, sqlx::Error> {
    let sql = format!("SELECT {LOAN_COLUMNS} FROM loans WHERE barcode = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(barcode.as_str())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(loan_from_row).transpose()
}

/// The patron's current loans, soonest due first.
pub async fn loans_of(
    conn: &mut AnyConnection,
    card: &CardNumber,
) -> Result<Vec<LoanRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {LOAN_COLUMNS} FROM loans WHERE card_number = $1 ORDER BY due_date, checked_out_at, loan_id"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(card.as_str())
        .fetch_all(conn)
        .await?
        .iter()
        .map(loan_from_row)
        .collect()
}

/// Rule L2: a renewal's new due date.
pub async fn renew_loan(
    conn: &mut AnyConnection,
    loan_id: &str,
    due_date: Date,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE loans SET renewed = 1, due_date = $2 WHERE loan_id = $1")
        .bind(loan_id)
        .bind(format_date(due_date))
        .execute(conn)
        .await?;
    Ok(())
}

/// Rule V1: ends a loan. The current loan is deleted and what remains of it is written
/// without the reader unless `returned.reader` is set (the patron's own history).
pub async fn end_loan(
    conn: &mut AnyConnection,
    loan_id: &str,
    returned: &ReturnedLoan,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM loans WHERE loan_id = $1")
        .bind(loan_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO returned_loans (return_id, barcode, title_id, material_type, branch, returned_to, checked_out_on, due_date, returned_on, renewed, reader)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    // A fresh id, not the loan's: nothing recorded while the loan was current (the record
    // of staff actions, logs) can be joined to the returned record.
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(returned.barcode.as_str())
    .bind(returned.title.as_str())
    .bind(returned.material.code())
    .bind(returned.branch.code())
    .bind(returned.returned_to.code())
    .bind(format_date(returned.checked_out_on))
    .bind(format_date(returned.due_date))
    .bind(format_date(returned.returned_on))
    .bind(flag(returned.renewed))
    .bind(returned.reader.as_ref().map(|c| c.as_str().to_string()))
    .execute(conn)
    .await?;
    Ok(())
}

/// What remains of returned loans of one item (for tests and statistics): (reader, returned
/// on).
pub async fn returned_loans_of_item(
    conn: &mut AnyConnection,
    barcode: &Barcode,
) -> Result<Vec<(Option<String>, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT reader, returned_on FROM returned_loans WHERE barcode = $1 ORDER BY returned_on",
    )
    .bind(barcode.as_str())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("reader")?, r.try_get("returned_on")?)))
        .collect()
}

// ---- holds --------------------------------------------------------------------------

const HOLD_COLUMNS: &str = "hold_id, card_number, title_id, pickup_branch, status, placed_at, seq, receipt_mail, origin, origin_branch, barcode, ready_until, mail_sent_at, notice_event_id, cancelled_by, reason, off_shelf_pending, updated_at";

const ACTIVE: &str = "('provisional', 'confirmed', 'in_transit', 'awaiting_notice', 'ready')";

/// A hold row; `None` for a fulfilled hold that no longer names its patron (V1).
fn hold_from_row(r: &AnyRow) -> Result<Option<HoldRow>, sqlx::Error> {
    let Some(card): Option<String> = r.try_get("card_number")? else {
        return Ok(None);
    };
    let status: String = r.try_get("status")?;
    let status = HoldStatus::parse(&status).ok_or_else(|| corrupt("status"))?;
    let item = barcode_col(r, "barcode")?;
    let reason: Option<String> = r.try_get("reason")?;
    let item_req = || req(item.clone(), "barcode");
    let state = match status {
        HoldStatus::Provisional => HoldState::Provisional,
        HoldStatus::Confirmed => HoldState::Confirmed,
        HoldStatus::InTransit => HoldState::InTransit { item: item_req()? },
        HoldStatus::AwaitingNotice => HoldState::AwaitingNotice { item: item_req()? },
        HoldStatus::Ready => HoldState::Ready {
            item: item_req()?,
            mail_sent_at: req(instant_col(r, "mail_sent_at")?, "mail_sent_at")?,
            ready_until: req(date_col(r, "ready_until")?, "ready_until")?,
        },
        HoldStatus::Fulfilled => HoldState::Fulfilled { item: item_req()? },
        HoldStatus::Cancelled => {
            let by: Option<String> = r.try_get("cancelled_by")?;
            HoldState::Cancelled {
                by: match by.as_deref() {
                    Some("staff") => CancelledBy::Staff,
                    _ => CancelledBy::Patron,
                },
                item: item.clone(),
            }
        }
        HoldStatus::Expired => HoldState::Expired { item: item_req()? },
        HoldStatus::Rejected => HoldState::Rejected {
            reason: reason.clone(),
        },
    };
    let origin: String = r.try_get("origin")?;
    let origin = match origin.as_str() {
        "web" => Origin::Web,
        "counter" => Origin::Counter(req(branch_col(r, "origin_branch")?, "origin_branch")?),
        _ => return Err(corrupt("origin")),
    };
    let seq: i64 = r.try_get("seq")?;
    Ok(Some(HoldRow {
        hold: Hold {
            id: HoldId::new(r.try_get::<String, _>("hold_id")?),
            patron: CardNumber::parse(&card).map_err(|_| corrupt("card_number"))?,
            title: title_col(r, "title_id")?,
            pickup: req(branch_col(r, "pickup_branch")?, "pickup_branch")?,
            placed_at: req(instant_col(r, "placed_at")?, "placed_at")?,
            seq: u64::try_from(seq).map_err(|_| corrupt("seq"))?,
            state,
        },
        receipt_mail: bool_col(r, "receipt_mail")?,
        origin,
        notice_event_id: r.try_get("notice_event_id")?,
        reason,
        off_shelf_pending: bool_col(r, "off_shelf_pending")?,
        updated_at: r.try_get("updated_at")?,
    }))
}

fn holds_from_rows(rows: &[AnyRow]) -> Result<Vec<HoldRow>, sqlx::Error> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        if let Some(h) = hold_from_row(r)? {
            out.push(h);
        }
    }
    Ok(out)
}

/// The columns a hold's state decides.
struct StateColumns {
    barcode: Option<String>,
    ready_until: Option<String>,
    mail_sent_at: Option<String>,
    cancelled_by: Option<&'static str>,
}

fn state_columns(state: &HoldState) -> StateColumns {
    let item = |b: &Barcode| Some(b.as_str().to_string());
    let mut c = StateColumns {
        barcode: None,
        ready_until: None,
        mail_sent_at: None,
        cancelled_by: None,
    };
    match state {
        HoldState::Provisional | HoldState::Confirmed | HoldState::Rejected { .. } => {}
        HoldState::InTransit { item: i }
        | HoldState::AwaitingNotice { item: i }
        | HoldState::Fulfilled { item: i }
        | HoldState::Expired { item: i } => c.barcode = item(i),
        HoldState::Ready {
            item: i,
            mail_sent_at,
            ready_until,
        } => {
            c.barcode = item(i);
            c.mail_sent_at = Some(kitsuki_platform::clock::format_instant(*mail_sent_at));
            c.ready_until = Some(format_date(*ready_until));
        }
        HoldState::Cancelled { by, item: i } => {
            c.barcode = i.as_ref().and_then(item);
            c.cancelled_by = Some(match by {
                CancelledBy::Patron => "patron",
                CancelledBy::Staff => "staff",
            });
        }
    }
    c
}

pub async fn insert_hold(
    conn: &mut AnyConnection,
    row: &HoldRow,
    now: &str,
) -> Result<(), sqlx::Error> {
    let h = &row.hold;
    let c = state_columns(&h.state);
    sqlx::query(
        "INSERT INTO holds (hold_id, card_number, title_id, pickup_branch, status, placed_at, seq, receipt_mail, origin, origin_branch, barcode, ready_until, mail_sent_at, notice_event_id, cancelled_by, reason, off_shelf_pending, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $18)",
    )
    .bind(h.id.as_str())
    .bind(h.patron.as_str())
    .bind(h.title.as_str())
    .bind(h.pickup.code())
    .bind(h.status().code())
    .bind(kitsuki_platform::clock::format_instant(h.placed_at))
    .bind(i64::try_from(h.seq).unwrap_or(i64::MAX))
    .bind(flag(row.receipt_mail))
    .bind(row.origin.code())
    .bind(match row.origin {
        Origin::Web => None,
        Origin::Counter(b) => Some(b.code()),
    })
    .bind(c.barcode)
    .bind(c.ready_until)
    .bind(c.mail_sent_at)
    .bind(row.notice_event_id.clone())
    .bind(c.cancelled_by)
    .bind(row.reason.clone())
    .bind(flag(row.off_shelf_pending))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes a hold's state and the shell's columns beside it.
pub async fn update_hold(
    conn: &mut AnyConnection,
    row: &HoldRow,
    now: &str,
) -> Result<(), sqlx::Error> {
    let c = state_columns(&row.hold.state);
    sqlx::query(
        "UPDATE holds SET status = $2, barcode = $3, ready_until = $4, mail_sent_at = $5,
                cancelled_by = $6, reason = $7, notice_event_id = $8, off_shelf_pending = $9,
                updated_at = $10
         WHERE hold_id = $1",
    )
    .bind(row.hold.id.as_str())
    .bind(row.hold.status().code())
    .bind(c.barcode)
    .bind(c.ready_until)
    .bind(c.mail_sent_at)
    .bind(c.cancelled_by)
    .bind(row.reason.clone())
    .bind(row.notice_event_id.clone())
    .bind(flag(row.off_shelf_pending))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_hold(
    conn: &mut AnyConnection,
    hold_id: &str,
) -> Result<Option<HoldRow>, sqlx::Error> {
    let sql = format!("SELECT {HOLD_COLUMNS} FROM holds WHERE hold_id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(hold_id)
        .fetch_optional(conn)
        .await?;
    match row {
        Some(r) => hold_from_row(&r),
        None => Ok(None),
    }
}

/// The active holds of a title: its queue (H6).
pub async fn active_holds_of_title(
    conn: &mut AnyConnection,
    title: &TitleId,
) -> Result<Vec<HoldRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {HOLD_COLUMNS} FROM holds WHERE title_id = $1 AND status IN {ACTIVE} ORDER BY placed_at, seq"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(title.as_str())
        .fetch_all(conn)
        .await?;
    holds_from_rows(&rows)
}

/// The latest placement instant on a title's queue, as stored (H6: placement order).
pub async fn latest_placement(
    conn: &mut AnyConnection,
    title: &TitleId,
) -> Result<Option<OffsetDateTime>, sqlx::Error> {
    let s: Option<String> =
        sqlx::query_scalar("SELECT MAX(placed_at) FROM holds WHERE title_id = $1")
            .bind(title.as_str())
            .fetch_one(conn)
            .await?;
    s.map(|s| parse_instant(&s).ok_or_else(|| corrupt("placed_at")))
        .transpose()
}

/// The patron's active holds, and with `ended_since` also those that ended (cancelled,
/// expired, rejected) since that instant. Fulfilled holds are never listed: once lent, the
/// item is among the loans.
pub async fn holds_of(
    conn: &mut AnyConnection,
    card: &CardNumber,
    ended_since: Option<&str>,
) -> Result<Vec<HoldRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {HOLD_COLUMNS} FROM holds WHERE card_number = $1
           AND (status IN {ACTIVE}
                OR (status IN ('cancelled', 'expired', 'rejected') AND updated_at >= $2))
         ORDER BY placed_at, seq"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(card.as_str())
        // With no window, a bound no instant is after.
        .bind(ended_since.unwrap_or("9999"))
        .fetch_all(conn)
        .await?;
    holds_from_rows(&rows)
}

/// Holds picking up at `branch` in one of `statuses`, oldest first.
pub async fn holds_at(
    conn: &mut AnyConnection,
    branch: Branch,
    statuses: &[HoldStatus],
) -> Result<Vec<HoldRow>, sqlx::Error> {
    if statuses.is_empty() {
        return Ok(Vec::new());
    }
    // Codes of a fixed enum, never input.
    let list = statuses
        .iter()
        .map(|s| format!("'{}'", s.code()))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT {HOLD_COLUMNS} FROM holds WHERE pickup_branch = $1 AND status IN ({list}) ORDER BY placed_at, seq"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(branch.code())
        .fetch_all(conn)
        .await?;
    holds_from_rows(&rows)
}

/// Ended holds at `branch` whose released item still waits to be taken off its hold shelf.
pub async fn off_shelf_pending(
    conn: &mut AnyConnection,
    branch: Branch,
) -> Result<Vec<HoldRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {HOLD_COLUMNS} FROM holds WHERE pickup_branch = $1 AND off_shelf_pending = 1 ORDER BY updated_at, hold_id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(branch.code())
        .fetch_all(conn)
        .await?;
    holds_from_rows(&rows)
}

/// The item was scanned at a desk: whatever ended holds left it on a hold shelf, staff have
/// had it in hand since (taken off the shelf there, or arrived where it was sent).
pub async fn clear_off_shelf(
    conn: &mut AnyConnection,
    barcode: &Barcode,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE holds SET off_shelf_pending = 0 WHERE barcode = $1 AND off_shelf_pending = 1",
    )
    .bind(barcode.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// Rule V1: a fulfilled hold is a record of what its patron borrowed; once the loan is
/// returned it no longer names the patron (unless they keep a reading history).
pub async fn forget_fulfilled_holds(
    conn: &mut AnyConnection,
    barcode: &Barcode,
    card: &CardNumber,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE holds SET card_number = NULL
         WHERE barcode = $1 AND card_number = $2 AND status = 'fulfilled'",
    )
    .bind(barcode.as_str())
    .bind(card.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// The number of active holds on a title (`holds_waiting`).
pub async fn holds_waiting(conn: &mut AnyConnection, title: &TitleId) -> Result<u32, sqlx::Error> {
    let sql = format!("SELECT COUNT(*) FROM holds WHERE title_id = $1 AND status IN {ACTIVE}");
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(title.as_str())
        .fetch_one(conn)
        .await?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

// ---- the record of staff actions ----------------------------------------------------------

/// Rule S3: who did what, when and where.
pub async fn record_staff_action(
    conn: &mut AnyConnection,
    actor: &str,
    action: &str,
    branch: Branch,
    subject: &str,
    at: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO staff_actions (action_id, actor, action, branch, subject, at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(actor)
    .bind(action)
    .bind(branch.code())
    .bind(subject)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The record of staff actions, oldest first: (actor, action, branch, subject, at).
pub async fn staff_actions(
    conn: &mut AnyConnection,
) -> Result<Vec<(String, String, String, String, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT actor, action, branch, subject, at FROM staff_actions ORDER BY at, action_id",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("actor")?,
                r.try_get("action")?,
                r.try_get("branch")?,
                r.try_get("subject")?,
                r.try_get("at")?,
            ))
        })
        .collect()
}
