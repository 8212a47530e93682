//! Email addresses for the library's mail (rules P7, P8): a practical syntax check, the
//! denylist of free webmail domains and the list of mobile-carrier domains (both
//! configuration, with the defaults of RULES.md).

use std::fmt;

use unicode_normalization::UnicodeNormalization;

/// Why an address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailError {
    /// Not an address we can send to.
    Syntax,
    /// Rule P7: a free webmail domain.
    FreeMail,
}

/// A syntactically usable address: `local@domain`, the domain lower-cased. The local part
/// keeps its case (it is the mailbox owner's business).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress {
    address: String,
    at: usize,
}

const MAX_ADDRESS: usize = 254;
const MAX_LOCAL: usize = 64;

fn local_char_ok(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c)
}

fn domain_ok(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    if domain.len() > 253 || labels.len() < 2 {
        return false;
    }
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let tld = labels[labels.len() - 1];
    labels.iter().all(|l| label_ok(l))
        && tld.len() >= 2
        && (tld.bytes().all(|b| b.is_ascii_alphabetic()) || tld.starts_with("xn--"))
}

impl EmailAddress {
    /// Checks an address as typed. Full-width characters (a Japanese keyboard's `＠`) are
    /// folded by NFKC first.
    ///
    /// The local part may have leading, trailing or doubled dots: RFC 5322 forbids them,
    /// but older Japanese carrier addresses (`taro..hanako.@docomo.ne.jp`) have them and
    /// receive mail (rule P8 accepts carrier addresses).
    pub fn parse(input: &str) -> Result<EmailAddress, EmailError> {
        let s: String = input.trim().nfkc().collect();
        let at = s.rfind('@').ok_or(EmailError::Syntax)?;
        let (local, domain) = (&s[..at], &s[at + 1..]);
        let domain = domain.to_ascii_lowercase();
        let local_ok = !local.is_empty()
            && local.len() <= MAX_LOCAL
            && local.chars().all(local_char_ok)
            && local.chars().any(|c| c != '.');
        if !local_ok || !domain_ok(&domain) {
            return Err(EmailError::Syntax);
        }
        let address = format!("{local}@{domain}");
        if address.len() > MAX_ADDRESS {
            return Err(EmailError::Syntax);
        }
        Ok(EmailAddress { address, at })
    }

    pub fn as_str(&self) -> &str {
        &self.address
    }

    pub fn local_part(&self) -> &str {
        &self.address[..self.at]
    }

    pub fn domain(&self) -> &str {
        &self.address[self.at + 1..]
    }

    /// Case-insensitive comparison with what a patron typed (rule P11: "the registered
    /// email"); false when `typed` is not an address at all.
    pub fn matches_typed(&self, typed: &str) -> bool {
        EmailAddress::parse(typed).is_ok_and(|t| t.address.eq_ignore_ascii_case(&self.address))
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}

/// How the library will reach an accepted address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    Ordinary,
    /// Rule P8: a mobile-carrier address; the patron must allow mail from the sender.
    Carrier,
}

/// Rule P7 default denylist.
pub const DEFAULT_FREE_MAIL_DOMAINS: &[&str] = &[
    "hotmail.com",
    "hotmail.co.jp",
    "outlook.com",
    "outlook.jp",
    "live.com",
    "live.jp",
    "msn.com",
    "yahoo.com",
    "yahoo.co.jp",
    "ymail.com",
];

/// Rule P8 default carrier domains: NTT docomo, au (KDDI, UQ mobile), SoftBank (and
/// iPhone, Disney Mobile), Y!mobile (and the former EMOBILE and WILLCOM).
pub const DEFAULT_CARRIER_DOMAINS: &[&str] = &[
    "docomo.ne.jp",
    "ezweb.ne.jp",
    "au.com",
    "uqmobile.jp",
    "softbank.ne.jp",
    "i.softbank.jp",
    "disney.ne.jp",
    "ymobile.ne.jp",
    "y-mobile.ne.jp",
    "emobile.ne.jp",
    "willcom.com",
    "pdx.ne.jp",
    "wcm.ne.jp",
];

/// Rule P8 default sender.
pub const DEFAULT_SENDER_ADDRESS: &str = "library@city.kitsuki.lg.jp";

/// The mail rules that are configuration (P7, P8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailPolicy {
    /// Refused, with their subdomains (rule P7).
    pub free_mail_domains: Vec<String>,
    /// Accepted with a notice, with their subdomains (rule P8).
    pub carrier_domains: Vec<String>,
    /// The address patrons must allow (rule P8).
    pub sender_address: String,
}

impl Default for MailPolicy {
    fn default() -> Self {
        MailPolicy {
            free_mail_domains: DEFAULT_FREE_MAIL_DOMAINS
                .iter()
                .map(|d| d.to_string())
                .collect(),
            carrier_domains: DEFAULT_CARRIER_DOMAINS
                .iter()
                .map(|d| d.to_string())
                .collect(),
            sender_address: DEFAULT_SENDER_ADDRESS.to_string(),
        }
    }
}

/// True when `domain` is `listed` or one of its subdomains (`mail.yahoo.co.jp` is
/// `yahoo.co.jp`; `notyahoo.co.jp` is not).
pub fn domain_is_or_under(domain: &str, listed: &str) -> bool {
    let listed = listed.trim().trim_start_matches('.').to_ascii_lowercase();
    if listed.is_empty() {
        return false;
    }
    let domain = domain.to_ascii_lowercase();
    domain == listed
        || domain
            .strip_suffix(listed.as_str())
            .is_some_and(|head| head.ends_with('.'))
}

impl MailPolicy {
    /// Rules P7 and P8 for an address that passed the syntax check.
    pub fn classify(&self, address: &EmailAddress) -> Result<MailKind, EmailError> {
        let d = address.domain();
        if self
            .free_mail_domains
            .iter()
            .any(|l| domain_is_or_under(d, l))
        {
            return Err(EmailError::FreeMail);
        }
        if self
            .carrier_domains
            .iter()
            .any(|l| domain_is_or_under(d, l))
        {
            return Ok(MailKind::Carrier);
        }
        Ok(MailKind::Ordinary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn practical_addresses_are_accepted_and_the_domain_lower_cased() {
        for (typed, stored) in [
            ("hanako@example.jp", "hanako@example.jp"),
            (
                "  Hanako.Kitsuki@Example.CO.JP ",
                "Hanako.Kitsuki@example.co.jp",
            ),
            ("ｈａｎａｋｏ＠ｅｘａｍｐｌｅ．ｊｐ", "hanako@example.jp"),
            (
                "taro+library@mail.example.com",
                "taro+library@mail.example.com",
            ),
            ("o'brien@example.ie", "o'brien@example.ie"),
            ("a@b.co", "a@b.co"),
            (
                "user@xn--eckwd4c7c.xn--zckzah",
                "user@xn--eckwd4c7c.xn--zckzah",
            ),
        ] {
            let a = EmailAddress::parse(typed).unwrap_or_else(|e| panic!("{typed}: {e:?}"));
            assert_eq!(a.as_str(), stored);
        }
        let a = EmailAddress::parse("Taro@Docomo.NE.JP").unwrap();
        assert_eq!(a.local_part(), "Taro");
        assert_eq!(a.domain(), "docomo.ne.jp");
    }

    #[test]
    fn p8_old_japanese_carrier_addresses_with_odd_dots_are_accepted() {
        for typed in [
            "taro..hanako@docomo.ne.jp",
            "taro.@docomo.ne.jp",
            ".taro@ezweb.ne.jp",
        ] {
            assert!(EmailAddress::parse(typed).is_ok(), "{typed}");
        }
    }

    #[test]
    fn things_that_are_not_addresses_are_refused() {
        let long_local = format!("{}@example.jp", "a".repeat(65));
        let long_label = format!("a@{}.jp", "b".repeat(64));
        for bad in [
            "",
            "hanako",
            "hanako@",
            "@example.jp",
            "hanako@example",
            "hanako@localhost",
            "hanako@example.j",
            "hanako@example.123",
            "hanako@-example.jp",
            "hanako@example-.jp",
            "hanako@exa_mple.jp",
            "hanako@example..jp",
            "hanako@.example.jp",
            "han ako@example.jp",
            "hanako@exam ple.jp",
            "花子@example.jp",
            "hanako@例え.jp",
            "\"hanako\"@example.jp",
            "hanako@exa\nmple.jp",
            "...@example.jp",
            "a@b@example.jp",
            long_local.as_str(),
            long_label.as_str(),
        ] {
            assert_eq!(EmailAddress::parse(bad), Err(EmailError::Syntax), "{bad:?}");
        }
    }

    #[test]
    fn p7_every_default_free_mail_domain_and_its_subdomains_are_refused() {
        let p = MailPolicy::default();
        for d in DEFAULT_FREE_MAIL_DOMAINS {
            for addr in [
                format!("x@{d}"),
                format!("x@mail.{d}"),
                format!("X@{}", d.to_uppercase()),
            ] {
                let a = EmailAddress::parse(&addr).unwrap();
                assert_eq!(p.classify(&a), Err(EmailError::FreeMail), "{addr}");
            }
        }
        assert_eq!(
            DEFAULT_FREE_MAIL_DOMAINS.len(),
            10,
            "the list of RULES.md P7"
        );
    }

    #[test]
    fn p7_lookalike_domains_are_not_free_mail() {
        let p = MailPolicy::default();
        for addr in [
            "x@notyahoo.co.jp",
            "x@yahoo.co.jp.example.com",
            "x@myoutlook.com",
            "x@example.jp",
        ] {
            let a = EmailAddress::parse(addr).unwrap();
            assert_eq!(p.classify(&a), Ok(MailKind::Ordinary), "{addr}");
        }
    }

    #[test]
    fn p8_carrier_domains_get_the_notice() {
        let p = MailPolicy::default();
        for d in DEFAULT_CARRIER_DOMAINS {
            let a = EmailAddress::parse(&format!("taro@{d}")).unwrap();
            assert_eq!(p.classify(&a), Ok(MailKind::Carrier), "{d}");
        }
        for addr in ["t@biz.ezweb.ne.jp", "t@i.softbank.jp", "t@softbank.ne.jp"] {
            let a = EmailAddress::parse(addr).unwrap();
            assert_eq!(p.classify(&a), Ok(MailKind::Carrier), "{addr}");
        }
        assert_eq!(p.sender_address, "library@city.kitsuki.lg.jp");
    }

    #[test]
    fn p7_p8_lists_are_configuration() {
        let p = MailPolicy {
            free_mail_domains: vec!["gmail.com".into(), " .Example.ORG ".into(), "".into()],
            carrier_domains: vec!["carrier.example".into()],
            sender_address: "books@example.jp".into(),
        };
        let classify = |s: &str| p.classify(&EmailAddress::parse(s).unwrap());
        assert_eq!(classify("a@gmail.com"), Err(EmailError::FreeMail));
        assert_eq!(classify("a@lists.example.org"), Err(EmailError::FreeMail));
        assert_eq!(classify("a@yahoo.co.jp"), Ok(MailKind::Ordinary));
        assert_eq!(classify("a@carrier.example"), Ok(MailKind::Carrier));
        assert_eq!(classify("a@docomo.ne.jp"), Ok(MailKind::Ordinary));
    }

    #[test]
    fn p11_typed_addresses_match_case_insensitively() {
        let a = EmailAddress::parse("Hanako@Example.jp").unwrap();
        assert!(a.matches_typed("hanako@example.jp"));
        assert!(a.matches_typed(" HANAKO@EXAMPLE.JP "));
        assert!(a.matches_typed("ｈａｎａｋｏ＠example.jp"));
        assert!(!a.matches_typed("hanako2@example.jp"));
        assert!(!a.matches_typed("hanako@example.jp.evil"));
        assert!(!a.matches_typed(""));
    }

    proptest! {
        #[test]
        fn parsing_is_idempotent(local in "[a-zA-Z0-9._+-]{1,20}", domain in "[a-z0-9]{1,10}\\.[a-z]{2,5}") {
            if let Ok(a) = EmailAddress::parse(&format!("{local}@{domain}")) {
                let again = EmailAddress::parse(a.as_str()).unwrap();
                prop_assert_eq!(again.as_str(), a.as_str());
                prop_assert_eq!(a.domain(), domain.as_str());
            }
        }

        #[test]
        fn p7_subdomains_of_a_listed_domain_are_under_it(sub in "[a-z0-9]{1,10}") {
            let under = format!("{sub}.yahoo.co.jp");
            prop_assert!(domain_is_or_under(&under, "yahoo.co.jp"));
            let glued = format!("{sub}yahoo.co.jp");
            prop_assert!(!domain_is_or_under(&glued, "yahoo.co.jp"));
        }
    }
}
