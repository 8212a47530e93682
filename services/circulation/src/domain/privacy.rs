//! Freedom of reading (rule V1, 図書館の自由に関する宣言): what is kept of a loan once the
//! item is returned.

use kitsuki_proto::{Barcode, Branch, CardNumber, TitleId};
use time::{Date, OffsetDateTime};

use super::MaterialType;
use super::calendar::library_date;
use super::loans::Loan;

/// The patron's choice about a reading history only they can see (V1). Off unless they opt
/// in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReadingHistory {
    #[default]
    NotKept,
    Kept,
}

/// What remains of a loan after the return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnedLoan {
    pub barcode: Barcode,
    pub title: TitleId,
    pub material: MaterialType,
    /// The lending branch.
    pub branch: Branch,
    /// Where it was returned (L5).
    pub returned_to: Branch,
    pub checked_out_on: Date,
    pub due_date: Date,
    pub returned_on: Date,
    pub renewed: bool,
    /// The reader, only for a patron who keeps a reading history (V1); `None` otherwise.
    pub reader: Option<CardNumber>,
}

/// Rule V1: the record of `loan` returned at `returned_at` to branch `returned_to`. The link
/// to the patron is dropped unless the patron has opted in to a reading history. Decision:
/// the record keeps library-local dates, not instants, whether or not it is linked: a
/// checkout instant could be matched against other timestamped records (the staff action
/// log of S3, access logs) to find the reader again, while dates are enough for statistics
/// and for the patron's own history.
pub fn returned_loan(
    loan: &Loan,
    returned_at: OffsetDateTime,
    returned_to: Branch,
    history: ReadingHistory,
) -> ReturnedLoan {
    ReturnedLoan {
        barcode: loan.barcode.clone(),
        title: loan.title.clone(),
        material: loan.material,
        branch: loan.branch,
        returned_to,
        checked_out_on: library_date(loan.checked_out_at),
        due_date: loan.due_date,
        returned_on: library_date(returned_at),
        renewed: loan.renewed,
        reader: match history {
            ReadingHistory::Kept => Some(loan.patron.clone()),
            ReadingHistory::NotKept => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::test_support::{card, loan};
    use time::macros::{date, datetime};

    fn sample() -> Loan {
        loan(7, 3, date!(2026 - 04 - 15), datetime!(2026-03-31 15:30 UTC))
    }

    #[test]
    fn a_returned_loan_forgets_its_reader_by_default_v1() {
        let r = returned_loan(
            &sample(),
            datetime!(2026-04-10 18:00 +09:00),
            Branch::Ota,
            ReadingHistory::default(),
        );
        assert_eq!(r.reader, None);
    }

    #[test]
    fn a_patron_who_opted_in_keeps_the_link_in_their_reading_history_v1() {
        let r = returned_loan(
            &sample(),
            datetime!(2026-04-10 18:00 +09:00),
            Branch::Ota,
            ReadingHistory::Kept,
        );
        assert_eq!(r.reader, Some(card(7)));
    }

    #[test]
    fn a_returned_loan_keeps_library_dates_not_instants_v1() {
        let l = sample();
        let r = returned_loan(
            &l,
            datetime!(2026-04-10 15:00 UTC),
            Branch::Ota,
            ReadingHistory::NotKept,
        );
        assert_eq!(
            r,
            ReturnedLoan {
                barcode: l.barcode.clone(),
                title: l.title.clone(),
                material: MaterialType::Book,
                branch: Branch::Kitsuki,
                returned_to: Branch::Ota,
                checked_out_on: date!(2026 - 04 - 01),
                due_date: date!(2026 - 04 - 15),
                returned_on: date!(2026 - 04 - 11),
                renewed: false,
                reader: None,
            }
        );
    }
}
