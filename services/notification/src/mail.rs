//! The mail texts (rule N1): Japanese plain-text templates embedded in the binary
//! (`templates/*.txt`, minijinja). The first line of a template is the subject; the rest,
//! the body, ends with the shared footer that says the mail is automatic and that the
//! library never asks for a password (P12).

use kitsuki_platform::clock::parse_instant;
use kitsuki_proto::Branch;
use minijinja::{Environment, UndefinedBehavior, context};

use crate::domain::plan::{Params, Template};
use crate::domain::text::{japanese_datetime, token_link};

/// The library's name as the mails sign it (rule B1).
pub const LIBRARY_NAME: &str = "杵築市立図書館";

/// A rendered mail, before addressing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    /// Plain text, lines ending in `\n`.
    pub body: String,
}

/// What a template may use besides its [`Params`].
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The patron's name as patron-account gave it; may be empty.
    pub name: &'a str,
    /// Base of the links in mails, such as `https://library.city.kitsuki.lg.jp`.
    pub base_url: &'a str,
    pub sender_address: &'a str,
}

/// The embedded templates.
#[derive(Debug)]
pub struct Texts {
    env: Environment<'static>,
}

impl Texts {
    /// Parses every template; fails only on a template that does not parse, which a unit
    /// test catches before any build ships.
    pub fn new() -> Result<Texts, minijinja::Error> {
        let mut env = Environment::new();
        // A missing value is a bug to see, not an empty gap in a patron's mail.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .build()?,
        );
        env.add_template("footer.txt", include_str!("../templates/footer.txt"))?;
        for t in Template::ALL {
            env.add_template(t.name(), source(t))?;
        }
        Ok(Texts { env })
    }

    /// Renders one mail.
    pub fn render(
        &self,
        template: Template,
        params: &Params,
        cx: &Context<'_>,
    ) -> Result<Rendered, minijinja::Error> {
        let link = match template {
            Template::EmailVerification => token_link(cx.base_url, "email/verify", &params.token),
            Template::PasswordReset => token_link(cx.base_url, "password/reset", &params.token),
            Template::EmailChanged => String::new(),
        };
        // An expiry that does not parse leaves the rule's wording alone ("2日間") rather
        // than losing the mail (N2).
        let expires_at_ja = parse_instant(&params.expires_at)
            .map(japanese_datetime)
            .unwrap_or_default();
        let branch_names = Branch::ALL
            .iter()
            .map(|b| b.name_ja())
            .collect::<Vec<_>>()
            .join("・");
        let text = self.env.get_template(template.name())?.render(context! {
            library_name => LIBRARY_NAME,
            branch_names,
            base_url => cx.base_url.trim_end_matches('/'),
            sender_address => cx.sender_address,
            name => cx.name.trim(),
            link,
            expires_at_ja,
            hold_id => params.hold_id.as_str(),
        })?;
        let (subject, body) = text.split_once('\n').unwrap_or((text.as_str(), ""));
        Ok(Rendered {
            subject: subject.trim().to_string(),
            body: format!("{}\n", body.trim_matches('\n')),
        })
    }

    /// The subject alone, for the delivery log before the mail is sent.
    pub fn subject(&self, template: Template, params: &Params) -> Result<String, minijinja::Error> {
        let cx = Context {
            name: "",
            base_url: "",
            sender_address: "",
        };
        Ok(self.render(template, params, &cx)?.subject)
    }
}

fn source(t: Template) -> &'static str {
    match t {
        Template::EmailVerification => include_str!("../templates/email_verification.txt"),
        Template::EmailChanged => include_str!("../templates/email_changed.txt"),
        Template::PasswordReset => include_str!("../templates/password_reset.txt"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx() -> Context<'static> {
        Context {
            name: "杵築 花子",
            base_url: "http://localhost:8080/",
            sender_address: "library@city.kitsuki.lg.jp",
        }
    }

    #[test]
    fn the_verification_mail_has_the_link_and_the_expiry_in_tokyo_time() {
        let t = Texts::new().unwrap();
        let p = Params {
            token: "abc123".into(),
            expires_at: "2026-04-03T06:30:00.000000Z".into(),
            verification_id: "v".into(),
            ..Params::default()
        };
        let m = t.render(Template::EmailVerification, &p, &cx()).unwrap();
        assert_eq!(m.subject, "メールアドレス確認のお願い");
        assert!(
            m.body.starts_with("杵築 花子 様\n\n杵築市立図書館です。\n"),
            "{}",
            m.body
        );
        assert!(
            m.body
                .contains("\nhttp://localhost:8080/email/verify?token=abc123\n")
        );
        assert!(
            m.body.contains("2026年4月3日（金）15時30分 まで"),
            "{}",
            m.body
        );
        assert!(m.body.contains("メールアドレス変更完了のお知らせ"));
    }

    #[test]
    fn the_change_mail_has_the_subject_of_the_guide() {
        let t = Texts::new().unwrap();
        let m = t
            .render(Template::EmailChanged, &Params::default(), &cx())
            .unwrap();
        assert_eq!(m.subject, "メールアドレス変更完了のお知らせ");
        assert!(m.body.contains("「library@city.kitsuki.lg.jp」"));
        assert!(m.body.contains("杵築市立図書館・山香図書室・大田図書室"));
    }

    #[test]
    fn the_reset_mail_has_a_thirty_minute_link() {
        let t = Texts::new().unwrap();
        let p = Params {
            token: "r/1".into(),
            expires_at: "2026-04-03T06:30:00Z".into(),
            ..Params::default()
        };
        let m = t.render(Template::PasswordReset, &p, &cx()).unwrap();
        assert_eq!(m.subject, "パスワード再設定のご案内");
        assert!(
            m.body
                .contains("http://localhost:8080/password/reset?token=r%2F1")
        );
        assert!(m.body.contains("30分間"));
    }

    #[test]
    fn every_mail_is_signed_automatic_and_never_asks_for_a_password() {
        // Rule P12: no mail asks for the password; each says the library never will.
        let t = Texts::new().unwrap();
        let p = Params {
            token: "x".into(),
            ..Params::default()
        };
        for template in Template::ALL {
            let m = t.render(template, &p, &cx()).unwrap();
            assert!(
                m.body
                    .contains("図書館からパスワードをお尋ねすることは絶対にありません")
            );
            assert!(m.body.contains("自動で送信しています"));
            assert!(
                m.body
                    .contains("\n杵築市立図書館・山香図書室・大田図書室\n")
            );
            assert!(m.body.contains("http://localhost:8080/\n"));
            assert!(!m.body.contains("{{") && !m.body.contains("{%"));
            assert!(m.body.ends_with('\n') && !m.body.ends_with("\n\n"));
        }
    }

    #[test]
    fn without_a_name_or_a_readable_expiry_the_mail_still_reads_well() {
        let t = Texts::new().unwrap();
        let p = Params {
            token: "x".into(),
            expires_at: "soon".into(),
            ..Params::default()
        };
        let m = t
            .render(
                Template::EmailVerification,
                &p,
                &Context { name: " ", ..cx() },
            )
            .unwrap();
        assert!(m.body.starts_with("杵築市立図書館です。"), "{}", m.body);
        assert!(
            m.body
                .contains("このリンクの有効期限は、お申し込みから2日間です。")
        );
        assert_eq!(
            t.subject(Template::EmailChanged, &Params::default())
                .unwrap(),
            "メールアドレス変更完了のお知らせ"
        );
    }
}
