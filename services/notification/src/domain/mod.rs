//! The pure core of the notification service: which mails an event calls for
//! ([`plan`]), the life of one delivery and its retry schedule ([`delivery`]), and how
//! dates and links are written in a mail ([`text`]). No I/O and no clock of its own: the
//! shell hands in instants and stores what these functions decide.

pub mod delivery;
pub mod plan;
pub mod text;
