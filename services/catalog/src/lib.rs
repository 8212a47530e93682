//! kitsuki catalog service.
