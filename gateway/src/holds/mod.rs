//! The patron's loans and holds: 貸出状況 and 予約状況, 延長 (rule L2), 予約取消 (H10) and the
//! インターネット予約 flow (H4), in the JSON API and the pages.

pub mod api;
pub mod pages;

use crate::web::route_table::Routes;

/// The slice's routes: its pages' and its API's.
pub(crate) fn routes() -> Routes {
    Routes::new().merge(pages::routes()).merge(api::routes())
}
