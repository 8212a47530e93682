//! The catalogue: search (the JSON API and the results page with facets, sorts and
//! もしかして), a title's page with its copies and other editions, and rule H1's answer
//! for every title shown.

pub mod api;
pub mod holdability;
pub mod pages;
pub mod refine;
pub mod search;
pub mod search_view;
pub mod views;

use crate::web::route_table::Routes;

/// The slice's routes: its pages' and its API's.
pub(crate) fn routes() -> Routes {
    Routes::new().merge(pages::routes()).merge(api::routes())
}
