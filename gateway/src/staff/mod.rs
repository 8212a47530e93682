//! The counter: staff sessions (rule S3), patron registration and Webサービス (P1–P5), and
//! catalogue administration (titles, items, readings; the admin role).

pub mod admin;
pub mod counter;
pub mod pages;
pub mod readings;
pub mod session;

use crate::web::route_table::Routes;

/// The slice's routes: its pages' and its API's.
pub(crate) fn routes() -> Routes {
    Routes::new()
        .merge(pages::routes())
        .merge(session::routes())
        .merge(counter::routes())
        .merge(readings::routes())
        .merge(admin::routes())
}
