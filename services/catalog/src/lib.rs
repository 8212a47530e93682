//! The catalog service: titles and items in its own database, a Japanese-aware search
//! index, gRPC to create, read and search them, and the MARC import.

pub mod catch_up;
pub mod consumer;
pub mod domain;
pub mod grpc;
pub mod import;
pub mod index;
pub mod marc;
pub mod model;
pub mod readings;
pub mod regenerate;
pub mod replica;
pub mod search;
pub mod search_pool;
pub mod service;
pub mod store;

pub use replica::{IndexFollower, ReplicaOptions};
pub use service::{Catalog, NewTitle};
