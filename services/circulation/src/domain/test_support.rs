//! Builders shared by the core's tests.

use kitsuki_proto::{Barcode, Branch, CardNumber, TitleId};
use time::{Date, Duration, OffsetDateTime};

use super::holds::{Hold, HoldState};
use super::loans::Loan;
use super::{HoldId, MaterialType};

pub fn card(n: u32) -> CardNumber {
    CardNumber::parse(&format!("{n:07}")).unwrap()
}

pub fn title(n: u32) -> TitleId {
    TitleId::parse(&format!("00000000-0000-7000-8000-{n:012}")).unwrap()
}

pub fn barcode(s: &str) -> Barcode {
    Barcode::parse(s).unwrap()
}

pub fn hold_id(n: u32) -> HoldId {
    HoldId::new(format!("h{n}"))
}

/// A hold of patron `n` on title 1, placed `n` minutes after a fixed instant.
pub fn hold(n: u32, pickup: Branch, state: HoldState) -> Hold {
    Hold {
        id: hold_id(n),
        patron: card(n),
        title: title(1),
        pickup,
        placed_at: time::macros::datetime!(2026-04-01 10:00 +09:00)
            + Duration::minutes(i64::from(n)),
        seq: u64::from(n),
        state,
    }
}

/// A loan of a book from Kitsuki, not renewed.
pub fn loan(patron: u32, title_n: u32, due_date: Date, checked_out_at: OffsetDateTime) -> Loan {
    Loan {
        barcode: barcode(&format!("KT-{title_n}")),
        title: title(title_n),
        material: MaterialType::Book,
        patron: card(patron),
        branch: Branch::Kitsuki,
        checked_out_at,
        due_date,
        renewed: false,
    }
}
