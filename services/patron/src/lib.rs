//! kitsuki patron service.
