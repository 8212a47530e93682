//! A branch desk's circulation (rule S1): check-out, check-in, renewals, holds placed at
//! the counter, the hold shelf, pull list, transits, provisional and expired holds.

pub mod api;
pub mod pages;

use crate::web::route_table::Routes;

/// The slice's routes: its pages' and its API's.
pub(crate) fn routes() -> Routes {
    Routes::new().merge(pages::routes()).merge(api::routes())
}
