//! The patron service's configuration: what RULES.md calls "default" (P7, P8, P13) and the
//! session lifetimes. `PatronConfig::default()` is the library's published behaviour.

use crate::domain::email::MailPolicy;
use crate::domain::session::SessionLimits;
use crate::domain::throttle::ThrottleConfig;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatronConfig {
    /// Rule P13 (also applied to staff logins): 5 failures per card or user name, 20 per
    /// client address, within 15 minutes.
    pub throttle: ThrottleConfig,
    /// Rules P7 and P8: free-mail denylist, carrier domains, sender address.
    pub mail: MailPolicy,
    /// Patron sessions: 30 minutes idle, 12 hours in all.
    pub sessions: SessionLimits,
}
