//! What the pages and the API share, whatever the feature: the route table, the layout of
//! every page and its CSRF guard, templates, words, the refusals of forms, errors (JSON and
//! page), sessions' cookies, the client's address, size limits and security headers.

pub mod client_addr;
pub mod csrf;
pub mod error;
pub mod extract;
pub(crate) mod forms;
pub mod layout;
pub mod limits;
pub mod page;
pub mod route_table;
pub mod security;
pub mod session;
pub mod templates;
pub mod words;

#[cfg(test)]
mod render_tests;

pub use layout::{Layout, LayoutView};
pub(crate) use page::rendered;
pub use page::{PageError, PageForm, html_page, see_other};
