//! The patron service's configuration: what RULES.md calls "default" (P7, P8, P13) and the
//! session lifetimes. `PatronConfig::default()` is the library's published behaviour; the
//! defaults themselves live beside their rules (`domain::email`, `domain::throttle`), and
//! [`PatronSettings`] (flags and `KITSUKI_*` variables of the patron role and the
//! all-in-one) replaces only what is given.

use time::Duration;

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

/// The patron-account settings of the command line and environment (README
/// "Configuration"). Each is optional: unset, the rule's default applies.
#[derive(clap::Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct PatronSettings {
    /// Rule P7: domains refused as free mail, with their subdomains (comma-separated;
    /// replaces the default list).
    #[arg(long, env = "KITSUKI_FREE_MAIL_DOMAINS", value_delimiter = ',')]
    pub free_mail_domains: Option<Vec<String>>,
    /// Rule P8: mobile-carrier domains, accepted with the notice to allow the library's
    /// sender (comma-separated; replaces the default list).
    #[arg(long, env = "KITSUKI_CARRIER_DOMAINS", value_delimiter = ',')]
    pub carrier_domains: Option<Vec<String>>,
    /// Rule P13: failed logins per card number (or staff user name) within the window
    /// before further attempts wait (0: no limit). Default 5.
    #[arg(long, env = "KITSUKI_LOGIN_FAILURES_PER_ACCOUNT")]
    pub login_failures_per_account: Option<u32>,
    /// Rule P13: failed logins per client address within the window (0: no limit).
    /// Default 20.
    #[arg(long, env = "KITSUKI_LOGIN_FAILURES_PER_ADDRESS")]
    pub login_failures_per_address: Option<u32>,
    /// Rule P13: how long a failure counts, in minutes (at least 1). Default 15.
    #[arg(long, env = "KITSUKI_LOGIN_FAILURE_WINDOW_MINUTES", value_parser = clap::value_parser!(u32).range(1..))]
    pub login_failure_window_minutes: Option<u32>,
}

/// A comma-separated list as configured: entries trimmed, empty ones dropped.
fn list(items: Vec<String>) -> Vec<String> {
    items
        .into_iter()
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty())
        .collect()
}

impl PatronSettings {
    /// The configuration: the defaults, with what was given in their place.
    pub fn config(&self) -> PatronConfig {
        let mut config = PatronConfig::default();
        if let Some(d) = &self.free_mail_domains {
            config.mail.free_mail_domains = list(d.clone());
        }
        if let Some(d) = &self.carrier_domains {
            config.mail.carrier_domains = list(d.clone());
        }
        if let Some(n) = self.login_failures_per_account {
            config.throttle.per_account = n;
        }
        if let Some(n) = self.login_failures_per_address {
            config.throttle.per_address = n;
        }
        if let Some(m) = self.login_failure_window_minutes {
            config.throttle.window = Duration::minutes(i64::from(m));
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        settings: PatronSettings,
    }

    fn parse(args: &[&str]) -> PatronConfig {
        Cli::try_parse_from(std::iter::once("kitsuki").chain(args.iter().copied()))
            .unwrap()
            .settings
            .config()
    }

    #[test]
    fn nothing_given_is_the_published_behaviour() {
        assert_eq!(parse(&[]), PatronConfig::default());
    }

    #[test]
    fn p7_p8_p13_given_values_replace_the_defaults() {
        let c = parse(&[
            "--free-mail-domains",
            "example.jp, mail.example.com,,",
            "--carrier-domains=carrier.example",
            "--login-failures-per-account",
            "3",
            "--login-failures-per-address",
            "0",
            "--login-failure-window-minutes",
            "60",
        ]);
        assert_eq!(
            c.mail.free_mail_domains,
            vec!["example.jp".to_string(), "mail.example.com".to_string()]
        );
        assert_eq!(c.mail.carrier_domains, vec!["carrier.example".to_string()]);
        assert_eq!(
            c.throttle,
            ThrottleConfig {
                per_account: 3,
                per_address: 0,
                window: Duration::hours(1),
            }
        );
        assert_eq!(c.mail.sender_address, MailPolicy::default().sender_address);
        assert_eq!(c.sessions, SessionLimits::default());
    }

    #[test]
    fn an_empty_list_turns_the_list_off_and_a_zero_window_is_refused() {
        let c = parse(&["--free-mail-domains", ""]);
        assert!(c.mail.free_mail_domains.is_empty());
        assert_eq!(
            c.mail.carrier_domains,
            MailPolicy::default().carrier_domains
        );
        assert!(Cli::try_parse_from(["kitsuki", "--login-failure-window-minutes", "0"]).is_err());
    }
}
