//! kitsuki notification service.
