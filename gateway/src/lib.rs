//! kitsuki gateway: the one door of the library system for people and programs. It serves
//! the Japanese HTML pages and the JSON API of `API.md`, and answers both by asking the
//! services (catalog, patron-account, the three branch instances of circulation) over gRPC
//! (`circulation` says which instance each call goes to); it holds no library rule of its
//! own except the ones a page must show before anything is asked (rule H1's 「予約申込」
//! button, the rule P5 banner). Sessions belong to patron-account; the gateway carries
//! their tokens in cookies or bearer headers (`session`) and guards the forms against
//! forgery (`csrf`).
//! In the embedded one-process run it can also serve the developer's outbox pages
//! (`pages::dev`, reading mail files with `eml`), which a deployment never routes.
//!
//! Where to start: [`routes::routes`] lists every feature's routes; each entry leads to
//! the module that serves it, which lists its own routes in a `routes()` beside its
//! handlers (`api::*` for the JSON API, `pages::*` for the pages). A page and the API
//! answer alike because both call the same functions (`circulation` for loans and holds,
//! `api::*` for the rest) and show the same views (`views`, `circulation::views`).

pub mod api;
pub mod circulation;
pub mod client_addr;
pub mod csrf;
pub mod eml;
pub mod error;
pub mod extract;
pub mod holdability;
pub mod limits;
pub mod openapi;
pub mod pages;
pub mod route_table;
pub mod routes;
pub mod search;
pub mod search_view;
pub mod security;
pub mod session;
pub mod state;
pub mod templates;
pub mod views;

pub use client_addr::TrustedProxies;
pub use error::{ApiError, Lang};
pub use holdability::holdability;
pub use routes::router;
pub use security::security_headers_layer;
pub use state::{AppState, CirculationClients, Clients};

#[cfg(test)]
pub(crate) mod test_support;
