//! kitsuki gateway: the one door of the library system for people and programs. It serves
//! the Japanese HTML pages and the JSON API of `API.md`, and answers both by asking the
//! services (catalog, patron-account, the three branch instances of circulation) over gRPC
//! (`circulation` says which instance each call goes to); it holds no library rule of its
//! own except the ones a page must show before anything is asked (rule H1's 「予約申込」
//! button, the rule P5 banner). Sessions belong to patron-account; the gateway carries
//! their tokens in cookies or bearer headers (`session`) and guards the forms against
//! forgery (`csrf`).
//! In the embedded one-process run it can also serve the developer's outbox pages
//! (`dev::pages`, reading mail files with `dev::eml`), which a deployment never routes.
//!
//! Where to start: a feature is a folder with its JSON API (`api.rs`), its pages
//! (`pages.rs`) and their `routes()`: `catalog/` (search, a title's page, H1), `account/`
//! (sessions, email, password, マイページ), `holds/` (loans and holds, the hold flow),
//! `staff/` (the counter, catalogue administration), `desk/` (a branch desk's
//! circulation), `dev/` (outbox pages, test clock). [`routes::routes`] merges them. What
//! every feature uses is in `web/` (route table, layout and CSRF, templates, words,
//! errors, sessions, limits); `circulation/` is the client of the three circulation
//! instances that the holds and desk features share, so that a page and the API ask the
//! same function and cannot disagree.

pub mod account;
pub mod catalog;
pub mod circulation;
pub mod desk;
pub mod dev;
pub mod holds;
pub mod openapi;
pub mod routes;
pub mod staff;
pub mod state;
pub mod web;

pub use catalog::holdability::holdability;
pub use routes::router;
pub use state::{AppState, CirculationClients, Clients};
pub use web::client_addr::TrustedProxies;
pub use web::error::{ApiError, Lang};
pub use web::security::security_headers_layer;

#[cfg(test)]
pub(crate) mod test_support;
