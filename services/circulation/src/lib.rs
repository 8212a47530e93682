//! kitsuki circulation service.
