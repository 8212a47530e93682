//! The JSON shapes of API.md made from the proto messages the services answer with. The
//! pages render from the same values, so a page and the API cannot disagree about a title.

use kitsuki_proto::catalog::{
    BranchAvailability, Item, ItemStatus, MaterialType, TitleDetail, TitleSummary,
};
use kitsuki_proto::circulation::TitleHoldability as CirculationHoldability;
use kitsuki_proto::{Branch, ErrorCode};
use serde::Serialize;

use crate::catalog::holdability::holdability;
use crate::web::error::Lang;

/// API name of a material type (rule M1), `None` for a value the catalogue should never
/// send.
pub fn material_code(kind: MaterialType) -> Option<&'static str> {
    match kind {
        MaterialType::Book => Some("book"),
        MaterialType::Magazine => Some("magazine"),
        MaterialType::Av => Some("av"),
        MaterialType::Unspecified => None,
    }
}

/// Rule M1's names of the material types.
pub fn material_label(kind: Option<&str>) -> &'static str {
    match kind {
        Some("book") => "図書",
        Some("magazine") => "雑誌",
        Some("av") => "視聴覚資料",
        _ => "",
    }
}

/// Reads the API name of a material type back.
pub fn parse_material(code: &str) -> Option<MaterialType> {
    match code {
        "book" => Some(MaterialType::Book),
        "magazine" => Some(MaterialType::Magazine),
        "av" => Some(MaterialType::Av),
        _ => None,
    }
}

/// API name of an item status (API.md "Catalog").
pub fn status_code(status: ItemStatus) -> Option<&'static str> {
    match status {
        ItemStatus::Available => Some("available"),
        ItemStatus::OnLoan => Some("on_loan"),
        ItemStatus::InTransit => Some("in_transit"),
        ItemStatus::OnHoldShelf => Some("on_hold_shelf"),
        ItemStatus::Unspecified => None,
    }
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// Copies of a title at one branch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BranchCount {
    pub total: u32,
    pub available: u32,
}

/// Copies per branch, always with all three branches of rule B1 (zero where a branch has
/// none), so a client never has to guess what a missing key means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Availability {
    pub kitsuki: BranchCount,
    pub yamaga: BranchCount,
    pub ota: BranchCount,
}

impl Availability {
    pub fn of(rows: &[BranchAvailability]) -> Self {
        let mut availability = Availability::default();
        for row in rows {
            match Branch::parse(&row.branch) {
                Ok(branch) => {
                    let count = availability.get_mut(branch);
                    count.total += row.total;
                    count.available += row.available;
                }
                Err(_) => {
                    tracing::warn!(branch = %row.branch, "availability for an unknown branch ignored")
                }
            }
        }
        availability
    }

    pub fn get(&self, branch: Branch) -> BranchCount {
        match branch {
            Branch::Kitsuki => self.kitsuki,
            Branch::Yamaga => self.yamaga,
            Branch::Ota => self.ota,
        }
    }

    fn get_mut(&mut self, branch: Branch) -> &mut BranchCount {
        match branch {
            Branch::Kitsuki => &mut self.kitsuki,
            Branch::Yamaga => &mut self.yamaga,
            Branch::Ota => &mut self.ota,
        }
    }
}

/// Why a title cannot be held on the web (API.md: `hold_block`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HoldBlock {
    pub code: &'static str,
    pub message: &'static str,
}

/// A title summary of API.md.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TitleSummaryView {
    pub title_id: String,
    pub title: String,
    pub title_reading: Option<String>,
    /// The heading(s), as catalogued (`松下, 幸子`): for search and sorting by name.
    pub author: Option<String>,
    /// The creators as people write them, with their roles (「モンゴメリ 著；掛川恭子 訳」):
    /// what pages and mails show. The catalogue decides it (its `domain/names.rs`).
    pub creators: Option<String>,
    pub publisher: Option<String>,
    pub year: Option<i32>,
    pub isbn: Option<String>,
    #[serde(rename = "type")]
    pub material: Option<&'static str>,
    pub availability: Availability,
    pub holds_waiting: u32,
    pub holdable: bool,
    pub hold_block: Option<HoldBlock>,
    /// In a search with editions grouped: how many editions of the work this hit stands
    /// for (it is the best-ranked one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub editions: Option<u32>,
}

impl TitleSummaryView {
    pub fn new(summary: &TitleSummary, lang: Lang) -> Self {
        // Rule H1, decided once here for both the API and the pages.
        let hold = holdability(summary);
        TitleSummaryView {
            title_id: summary.title_id.clone(),
            title: summary.title.clone(),
            title_reading: non_empty(&summary.title_reading),
            author: non_empty(&summary.author),
            // A catalogue from before `creators` (field 14) answers none: its heading then
            // names the author rather than no one.
            creators: non_empty(&summary.creators).or_else(|| non_empty(&summary.author)),
            publisher: non_empty(&summary.publisher),
            year: summary.year,
            isbn: non_empty(&summary.isbn),
            material: material_code(summary.r#type()),
            availability: Availability::of(&summary.availability),
            holds_waiting: summary.holds_waiting,
            holdable: hold.is_ok(),
            hold_block: hold.err().map(|code| HoldBlock {
                code: code.as_str(),
                message: lang.message(code),
            }),
            editions: (summary.editions > 0).then_some(summary.editions),
        }
    }
}

impl TitleSummaryView {
    /// Rule H1 as circulation decides it now, for the title page and the hold flow: the
    /// same rows a hold is checked against, where the summary is the catalogue's copy of
    /// them and follows a moment behind (by events). The holds waiting come along.
    pub fn with_live(mut self, live: &CirculationHoldability, lang: Lang) -> Self {
        self.holds_waiting = live.holds_waiting;
        if live.holdable {
            self.holdable = true;
            self.hold_block = None;
            return self;
        }
        let code = live
            .hold_block
            .as_ref()
            .and_then(|b| ErrorCode::from_code(&b.code))
            .or_else(|| {
                self.hold_block
                    .as_ref()
                    .and_then(|b| ErrorCode::from_code(b.code))
            })
            .unwrap_or(ErrorCode::HoldNotHeldHere);
        self.holdable = false;
        self.hold_block = Some(HoldBlock {
            code: code.as_str(),
            message: lang.message(code),
        });
        self
    }
}

/// One copy of a title.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemView {
    pub barcode: String,
    pub branch: String,
    pub call_number: Option<String>,
    pub status: Option<&'static str>,
    /// `YYYY-MM-DD`, only while the item is on loan.
    pub due_date: Option<String>,
}

impl ItemView {
    pub fn new(item: &Item) -> Self {
        ItemView {
            barcode: item.barcode.clone(),
            branch: item.branch.clone(),
            call_number: non_empty(&item.call_number),
            status: status_code(item.status()),
            due_date: non_empty(&item.due_date),
        }
    }
}

/// An item as answered by `POST /api/v1/admin/items`: the item and the title it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreatedItemView {
    pub title_id: String,
    #[serde(flatten)]
    pub item: ItemView,
}

/// `GET /api/v1/titles/{title_id}`: the summary and its items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TitleDetailView {
    #[serde(flatten)]
    pub summary: TitleSummaryView,
    pub items: Vec<ItemView>,
    /// The other editions of the work (same title and author), newest first.
    pub other_editions: Vec<TitleSummaryView>,
}

impl TitleDetailView {
    /// `None` when the catalogue answered without a summary, which it never should.
    pub fn new(detail: &TitleDetail, lang: Lang) -> Option<Self> {
        let summary = detail.title.as_ref()?;
        Some(TitleDetailView {
            summary: TitleSummaryView::new(summary, lang),
            items: detail.items.iter().map(ItemView::new).collect(),
            other_editions: detail
                .other_editions
                .iter()
                .map(|s| TitleSummaryView::new(s, lang))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{item, summary};
    use serde_json::json;

    #[test]
    fn a_summary_has_every_field_of_api_md_and_all_three_branches() {
        let s = summary("坊っちゃん", MaterialType::Book, &[("kitsuki", 2, 0)]);
        let v = serde_json::to_value(TitleSummaryView::new(&s, Lang::Ja)).unwrap();
        for key in [
            "title_id",
            "title",
            "title_reading",
            "author",
            "creators",
            "publisher",
            "year",
            "isbn",
            "type",
            "availability",
            "holds_waiting",
            "holdable",
            "hold_block",
        ] {
            assert!(v.get(key).is_some(), "{key} missing");
        }
        assert_eq!(v["type"], "book");
        assert_eq!(v["author"], "夏目, 漱石");
        assert_eq!(v["creators"], "夏目漱石 著");
        assert_eq!(
            v["availability"],
            json!({"kitsuki": {"total": 2, "available": 0}, "yamaga": {"total": 0, "available": 0}, "ota": {"total": 0, "available": 0}})
        );
        assert_eq!(v["holdable"], true);
        assert_eq!(v["hold_block"], serde_json::Value::Null);
    }

    #[test]
    fn creators_fall_back_to_the_heading_only_when_the_catalogue_sends_none() {
        let mut s = summary("坊っちゃん", MaterialType::Book, &[]);
        s.creators = String::new();
        assert_eq!(
            TitleSummaryView::new(&s, Lang::Ja).creators.as_deref(),
            Some("夏目, 漱石")
        );
        s.author = " ".into();
        assert_eq!(TitleSummaryView::new(&s, Lang::Ja).creators, None);
    }

    #[test]
    fn hold_block_follows_h1_in_the_callers_language() {
        let s = summary("週刊誌", MaterialType::Magazine, &[("kitsuki", 1, 0)]);
        let ja = TitleSummaryView::new(&s, Lang::Ja);
        assert!(!ja.holdable);
        assert_eq!(
            ja.hold_block,
            Some(HoldBlock {
                code: "hold_material_type",
                message: kitsuki_proto::ErrorCode::HoldMaterialType.message_ja()
            })
        );
        let en = TitleSummaryView::new(&s, Lang::En);
        assert_eq!(
            en.hold_block.unwrap().message,
            kitsuki_proto::ErrorCode::HoldMaterialType.message_en()
        );
    }

    #[test]
    fn h1_circulations_own_answer_overrides_the_summary_on_the_title_page() {
        use kitsuki_proto::circulation::{Block, TitleHoldability};
        // The catalogue still shows a copy on the shelf; circulation has just lent it.
        let s = summary("坊っちゃん", MaterialType::Book, &[("kitsuki", 1, 1)]);
        let summary_view = TitleSummaryView::new(&s, Lang::Ja);
        assert!(!summary_view.holdable);
        let live = TitleHoldability {
            title_id: s.title_id.clone(),
            holdable: true,
            hold_block: None,
            holds_waiting: 3,
            copies: 1,
            copies_on_shelf: 0,
        };
        let view = summary_view.clone().with_live(&live, Lang::Ja);
        assert!(view.holdable);
        assert_eq!(view.hold_block, None);
        assert_eq!(view.holds_waiting, 3);
        // And the other way round, in the caller's language.
        let out = summary("こころ", MaterialType::Book, &[("kitsuki", 1, 0)]);
        let refused = TitleHoldability {
            title_id: out.title_id.clone(),
            holdable: false,
            hold_block: Some(Block {
                code: "hold_available_copy".into(),
                message: "…".into(),
                rule: "H1".into(),
            }),
            holds_waiting: 0,
            copies: 1,
            copies_on_shelf: 1,
        };
        let view = TitleSummaryView::new(&out, Lang::En).with_live(&refused, Lang::En);
        assert!(!view.holdable);
        assert_eq!(
            view.hold_block,
            Some(HoldBlock {
                code: "hold_available_copy",
                message: kitsuki_proto::ErrorCode::HoldAvailableCopy.message_en()
            })
        );
    }

    #[test]
    fn an_item_has_null_due_date_unless_set() {
        let shelf = ItemView::new(&item("KT-1", "kitsuki", ItemStatus::Available, ""));
        assert_eq!(shelf.due_date, None);
        assert_eq!(shelf.status, Some("available"));
        let out = ItemView::new(&item("KT-2", "ota", ItemStatus::OnLoan, "2025-02-01"));
        assert_eq!(out.due_date.as_deref(), Some("2025-02-01"));
        assert_eq!(out.status, Some("on_loan"));
        let v = serde_json::to_value(&shelf).unwrap();
        assert_eq!(v["due_date"], serde_json::Value::Null);
        assert_eq!(
            v.as_object().unwrap().len(),
            5,
            "barcode, branch, call_number, status, due_date"
        );
    }

    #[test]
    fn material_codes_round_trip() {
        for kind in [MaterialType::Book, MaterialType::Magazine, MaterialType::Av] {
            assert_eq!(parse_material(material_code(kind).unwrap()), Some(kind));
        }
        assert_eq!(parse_material("dvd"), None);
    }
}
