//! Plain values of the catalog: titles, items, material types and item statuses (rule M1).

use kitsuki_proto::catalog as pb;

/// Rule M1: book 図書, magazine 雑誌, AV 視聴覚資料.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MaterialType {
    Book,
    Magazine,
    Av,
}

impl MaterialType {
    pub fn code(self) -> &'static str {
        match self {
            MaterialType::Book => "book",
            MaterialType::Magazine => "magazine",
            MaterialType::Av => "av",
        }
    }

    pub fn parse(s: &str) -> Option<MaterialType> {
        match s {
            "book" => Some(MaterialType::Book),
            "magazine" => Some(MaterialType::Magazine),
            "av" => Some(MaterialType::Av),
            _ => None,
        }
    }

    pub fn to_proto(self) -> pb::MaterialType {
        match self {
            MaterialType::Book => pb::MaterialType::Book,
            MaterialType::Magazine => pb::MaterialType::Magazine,
            MaterialType::Av => pb::MaterialType::Av,
        }
    }

    pub fn from_proto(t: pb::MaterialType) -> Option<MaterialType> {
        match t {
            pb::MaterialType::Book => Some(MaterialType::Book),
            pb::MaterialType::Magazine => Some(MaterialType::Magazine),
            pb::MaterialType::Av => Some(MaterialType::Av),
            pb::MaterialType::Unspecified => None,
        }
    }
}

/// Item status as the catalog shows it (fed by circulation's item-status events).
pub fn status_to_proto(s: &str) -> pb::ItemStatus {
    match s {
        "available" => pb::ItemStatus::Available,
        "on_loan" => pb::ItemStatus::OnLoan,
        "in_transit" => pb::ItemStatus::InTransit,
        "on_hold_shelf" => pb::ItemStatus::OnHoldShelf,
        _ => pb::ItemStatus::Unspecified,
    }
}

/// A title as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Title {
    pub title_id: String,
    pub title: String,
    pub title_reading: String,
    pub author: String,
    /// The author's reading (generated; empty where none could be).
    pub author_reading: String,
    /// Where the readings came from: [`READING_GIVEN`], [`READING_GENERATED`] or empty.
    pub reading_source: String,
    /// The statement of responsibility as the record gives it (245 $c), or empty.
    pub responsibility: String,
    /// The NDC class number (`913.6`), or empty.
    pub ndc: String,
    pub publisher: String,
    pub year: Option<i64>,
    pub isbn: String,
    pub material_type: MaterialType,
    pub aliases: Vec<String>,
    pub source_id: Option<String>,
    pub created_at: String,
    /// Holds waiting on the title, as circulation last reported (0 until it does).
    pub holds_waiting: u64,
}

/// `reading_source` of a title whose reading the record or the admin API gave.
pub const READING_GIVEN: &str = "given";
/// `reading_source` of a title whose readings were generated (`crate::readings`): a tool
/// may regenerate them after a dictionary change.
pub const READING_GENERATED: &str = "generated";

/// An item (copy) as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub barcode: String,
    pub title_id: String,
    pub branch: String,
    pub call_number: String,
    pub status: String,
    pub due_date: Option<String>,
}

impl Item {
    pub fn to_proto(&self) -> pb::Item {
        pb::Item {
            barcode: self.barcode.clone(),
            title_id: self.title_id.clone(),
            branch: self.branch.clone(),
            call_number: self.call_number.clone(),
            status: status_to_proto(&self.status) as i32,
            due_date: self.due_date.clone().unwrap_or_default(),
            // Only CreateItem's answer names it (catalog.proto).
            r#type: pb::MaterialType::Unspecified as i32,
        }
    }
}

/// Builds the summary of a title from its items (availability per branch, rule B1) and
/// its creators as they are displayed (`domain::names`).
pub fn summary(title: &Title, items: &[Item]) -> pb::TitleSummary {
    let availability = kitsuki_proto::Branch::ALL
        .iter()
        .map(|b| {
            let here = items.iter().filter(|i| i.branch == b.code());
            let total = here.clone().count() as u32;
            let available = here.filter(|i| i.status == "available").count() as u32;
            pb::BranchAvailability {
                branch: b.code().to_string(),
                total,
                available,
            }
        })
        .collect();
    pb::TitleSummary {
        title_id: title.title_id.clone(),
        title: title.title.clone(),
        title_reading: title.title_reading.clone(),
        author: title.author.clone(),
        publisher: title.publisher.clone(),
        year: title.year.and_then(|y| i32::try_from(y).ok()),
        isbn: title.isbn.clone(),
        r#type: title.material_type.to_proto() as i32,
        availability,
        holds_waiting: u32::try_from(title.holds_waiting).unwrap_or(u32::MAX),
        created_at: title.created_at.clone(),
        responsibility: title.responsibility.clone(),
        ndc: title.ndc.clone(),
        creators: crate::domain::names::creators(&title.responsibility, &title.author),
        author_reading: title.author_reading.clone(),
        reading_source: title.reading_source.clone(),
        // Set by a search with editions grouped.
        editions: 0,
    }
}
