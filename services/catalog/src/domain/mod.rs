//! The pure core of the catalog: decisions and value types as functions of plain values, with
//! no I/O, so they can be tested exhaustively and quickly.

pub mod isbn;
pub mod names;
pub mod ndc;
pub mod reading;
pub mod text;
mod variants_table;
