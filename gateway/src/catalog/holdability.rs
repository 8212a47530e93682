//! Rule H1 as the catalogue shows it: may a patron place a web hold on this title? The
//! answer decides whether a page offers the 「予約申込」 button and fills the API's
//! `holdable` / `hold_block`, so it is a pure function of what the title summary shows.
//! (Circulation checks H1 again when a hold is placed, with the other hold rules.)

use kitsuki_proto::Branch;
use kitsuki_proto::ErrorCode;
use kitsuki_proto::catalog::{MaterialType, TitleSummary};

/// Rule H1: a web hold only on a book (図書), held by one of the three branches, with no
/// copy available on a shelf right now. The refusals are checked in that order, so a
/// magazine on the shelf is refused for being a magazine, the reason that holds whatever
/// happens to its copies.
pub fn holdability(title: &TitleSummary) -> Result<(), ErrorCode> {
    // An unknown or missing type is not a book: refuse rather than offer a hold that
    // circulation would reject.
    if title.r#type() != MaterialType::Book {
        return Err(ErrorCode::HoldMaterialType);
    }
    // Only the three branches of rule B1 count; a row for any other code is not ours.
    let ours = title
        .availability
        .iter()
        .filter(|a| Branch::parse(&a.branch).is_ok());
    let (total, available) = ours.fold((0u64, 0u64), |(t, a), row| {
        (t + u64::from(row.total), a + u64::from(row.available))
    });
    if total == 0 {
        return Err(ErrorCode::HoldNotHeldHere);
    }
    if available > 0 {
        return Err(ErrorCode::HoldAvailableCopy);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kitsuki_proto::catalog::BranchAvailability;

    fn title(kind: MaterialType, rows: &[(&str, u32, u32)]) -> TitleSummary {
        TitleSummary {
            title_id: "0192f1c2-7a5e-7c3b-9d1e-0123456789ab".into(),
            title: "坊っちゃん".into(),
            r#type: kind as i32,
            availability: rows
                .iter()
                .map(|(branch, total, available)| BranchAvailability {
                    branch: (*branch).into(),
                    total: *total,
                    available: *available,
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn h1_a_book_with_every_copy_on_loan_is_holdable() {
        let t = title(
            MaterialType::Book,
            &[("kitsuki", 2, 0), ("yamaga", 1, 0), ("ota", 0, 0)],
        );
        assert_eq!(holdability(&t), Ok(()));
    }

    #[test]
    fn h1_a_book_held_by_one_small_branch_only_is_holdable_when_out() {
        let t = title(MaterialType::Book, &[("ota", 1, 0)]);
        assert_eq!(holdability(&t), Ok(()));
    }

    #[test]
    fn h1_a_book_with_a_copy_on_any_shelf_is_refused_hold_available_copy() {
        for branch in ["kitsuki", "yamaga", "ota"] {
            let mut rows = vec![("kitsuki", 1, 0), ("yamaga", 1, 0), ("ota", 1, 0)];
            for row in rows.iter_mut().filter(|r| r.0 == branch) {
                row.2 = 1;
            }
            let t = title(MaterialType::Book, &rows);
            assert_eq!(
                holdability(&t),
                Err(ErrorCode::HoldAvailableCopy),
                "{branch}"
            );
        }
    }

    #[test]
    fn h1_a_book_no_branch_holds_is_refused_hold_not_held_here() {
        assert_eq!(
            holdability(&title(MaterialType::Book, &[])),
            Err(ErrorCode::HoldNotHeldHere)
        );
        let zeros = [("kitsuki", 0, 0), ("yamaga", 0, 0), ("ota", 0, 0)];
        assert_eq!(
            holdability(&title(MaterialType::Book, &zeros)),
            Err(ErrorCode::HoldNotHeldHere)
        );
    }

    #[test]
    fn h1_copies_of_a_branch_outside_the_three_do_not_count() {
        // Rule B1: only kitsuki, yamaga and ota hold items.
        let t = title(MaterialType::Book, &[("oita", 3, 0)]);
        assert_eq!(holdability(&t), Err(ErrorCode::HoldNotHeldHere));
        let t = title(MaterialType::Book, &[("kitsuki", 1, 0), ("oita", 3, 3)]);
        assert_eq!(holdability(&t), Ok(()));
    }

    #[test]
    fn h1_magazines_av_and_unknown_types_are_refused_hold_material_type_whatever_their_copies() {
        let cases: [&[(&str, u32, u32)]; 4] = [
            &[("kitsuki", 2, 0)],
            &[("kitsuki", 2, 1)],
            &[],
            &[("yamaga", 0, 0)],
        ];
        for kind in [
            MaterialType::Magazine,
            MaterialType::Av,
            MaterialType::Unspecified,
        ] {
            for rows in cases {
                assert_eq!(
                    holdability(&title(kind, rows)),
                    Err(ErrorCode::HoldMaterialType),
                    "{kind:?} {rows:?}"
                );
            }
        }
    }

    #[test]
    fn h1_an_out_of_range_type_number_is_not_a_book() {
        let mut t = title(MaterialType::Book, &[("kitsuki", 1, 0)]);
        t.r#type = 42;
        assert_eq!(holdability(&t), Err(ErrorCode::HoldMaterialType));
    }

    #[test]
    fn h1_every_combination_of_type_holding_and_shelf() {
        // Exhaustive over the three facts H1 reads: type, held anywhere, any copy available.
        for kind in [
            MaterialType::Unspecified,
            MaterialType::Book,
            MaterialType::Magazine,
            MaterialType::Av,
        ] {
            for total in 0..=2u32 {
                for available in 0..=total {
                    let t = title(kind, &[("yamaga", total, available)]);
                    let expected = if kind != MaterialType::Book {
                        Err(ErrorCode::HoldMaterialType)
                    } else if total == 0 {
                        Err(ErrorCode::HoldNotHeldHere)
                    } else if available > 0 {
                        Err(ErrorCode::HoldAvailableCopy)
                    } else {
                        Ok(())
                    };
                    assert_eq!(holdability(&t), expected, "{kind:?} {total}/{available}");
                }
            }
        }
    }

    #[test]
    fn h1_refusals_cite_rule_h1() {
        for code in [
            ErrorCode::HoldMaterialType,
            ErrorCode::HoldNotHeldHere,
            ErrorCode::HoldAvailableCopy,
        ] {
            assert_eq!(code.rule(), Some("H1"));
        }
    }
}
