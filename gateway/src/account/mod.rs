//! The patron's 「Webサービス」: sessions, profile, email (rules P6–P9) and password (P10–P12)
//! in the JSON API and the pages, and マイページ.

pub mod api;
pub mod my;
pub mod pages;

use crate::web::route_table::Routes;

/// The slice's routes: its pages' and its API's.
pub(crate) fn routes() -> Routes {
    Routes::new()
        .merge(pages::routes())
        .merge(my::routes())
        .merge(api::routes())
}
