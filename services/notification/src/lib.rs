//! The notification service: the mails of rule N1 in Japanese, sent through SMTP (or
//! written as `.eml` files in the embedded run), retried with back-off and logged per
//! delivery (N2). It consumes the events that call for mail (patron-account's and
//! circulation's hold events), asks patron-account for the address and the catalog for a
//! hold's title only when it sends, and announces each sent mail with `MailSent` (the ready
//! mail's starts the hold-shelf clock, H9).

pub mod config;
pub mod contacts;
pub mod domain;
pub mod grpc;
pub mod mail;
pub mod service;
pub mod store;
pub mod titles;
pub mod transport;

pub use config::{MailTransport, NotifierConfig};
pub use contacts::{Contact, ContactDirectory, GrpcContacts};
pub use domain::delivery::{RetryPolicy, Status as DeliveryStatus};
pub use domain::plan::Template;
pub use grpc::NotificationGrpc;
pub use service::{MAIL_SENT_SUBJECT, Notifier, Recorded};
pub use store::DeliveryRow;
pub use titles::{GrpcTitles, NoTitles, TitleDirectory, TitleInfo};
