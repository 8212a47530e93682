//! kitsuki gateway.
