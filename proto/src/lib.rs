//! Contracts shared by every kitsuki service: generated gRPC and event types, the validated
//! identifiers that cross service boundaries, and the one table of error codes.

pub mod error;
pub mod ids;
pub mod search;
pub mod text;

pub use error::{ErrorCode, ServiceError};
pub use ids::{Barcode, Branch, CardNumber, IdError, TitleId};

/// Generated code, nested as the proto packages are (cross-package references in the
/// generated code are relative paths such as `super::super::catalog::v1`).
pub mod generated {
    #![allow(clippy::all, missing_docs)]
    pub mod kitsuki {
        pub mod catalog {
            pub mod v1 {
                tonic::include_proto!("kitsuki.catalog.v1");
            }
        }
        pub mod patron {
            pub mod v1 {
                tonic::include_proto!("kitsuki.patron.v1");
            }
        }
        pub mod circulation {
            pub mod v1 {
                tonic::include_proto!("kitsuki.circulation.v1");
            }
        }
        pub mod notification {
            pub mod v1 {
                tonic::include_proto!("kitsuki.notification.v1");
            }
        }
        pub mod events {
            pub mod v1 {
                tonic::include_proto!("kitsuki.events.v1");
            }
        }
        pub mod platform {
            pub mod v1 {
                tonic::include_proto!("kitsuki.platform.v1");
            }
        }
    }
}

pub use generated::kitsuki::catalog::v1 as catalog;
pub use generated::kitsuki::circulation::v1 as circulation;
pub use generated::kitsuki::events::v1 as events;
pub use generated::kitsuki::notification::v1 as notification;
pub use generated::kitsuki::patron::v1 as patron;
pub use generated::kitsuki::platform::v1 as testclock;
