//! The mail texts (rule N1): Japanese plain-text templates embedded in the binary
//! (`templates/*.txt`, minijinja). The first line of a template is the subject; the rest,
//! the body, ends with the shared footer that says the mail is automatic and that the
//! library never asks for a password (P12). The hold mails share `hold_details.txt`: the
//! title and the pickup branch.

use kitsuki_platform::clock::parse_instant;
use kitsuki_proto::Branch;
use minijinja::{Environment, UndefinedBehavior, context};
use time::Date;

use crate::domain::plan::{Params, Template};
use crate::domain::text::{japanese_date, japanese_datetime, token_link};
use crate::titles::TitleInfo;

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
    /// The title a hold mail names, as the catalog answered at send time; `None` when it
    /// is unknown (the mail then points to the patron's page instead).
    pub title: Option<&'a TitleInfo>,
    /// Rule H9: the ready mail's last day on the hold shelf, computed from its sending time.
    pub ready_until: Option<Date>,
}

impl<'a> Context<'a> {
    /// A context without the hold facts (title, keep-until date).
    pub fn new(name: &'a str, base_url: &'a str, sender_address: &'a str) -> Context<'a> {
        Context {
            name,
            base_url,
            sender_address,
            title: None,
            ready_until: None,
        }
    }
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
                // An included part (`hold_details.txt`) ends its last line; the body is
                // trimmed at the end anyway.
                .keep_trailing_newline(true)
                .build()?,
        );
        env.add_template("footer.txt", include_str!("../templates/footer.txt"))?;
        env.add_template(
            "hold_details.txt",
            include_str!("../templates/hold_details.txt"),
        )?;
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
            Template::EmailChanged
            | Template::HoldReceipt
            | Template::HoldConfirmed
            | Template::HoldReady
            | Template::HoldExpired
            | Template::HoldRejected
            | Template::HoldCancelled => String::new(),
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
            title => cx.title.map_or("", |t| t.title.as_str()),
            creators => cx.title.map_or("", |t| t.creators.as_str()),
            // Rule B1: the branch as the patron reads it.
            pickup_branch_name => Branch::parse(&params.pickup_branch)
                .map(Branch::name_ja)
                .unwrap_or_default(),
            ready_until_ja => cx.ready_until.map(japanese_date).unwrap_or_default(),
            reason => params.reason.as_str(),
        })?;
        let (subject, body) = text.split_once('\n').unwrap_or((text.as_str(), ""));
        Ok(Rendered {
            subject: subject.trim().to_string(),
            body: format!("{}\n", body.trim_matches('\n')),
        })
    }

    /// The subject alone, for the delivery log before the mail is sent.
    pub fn subject(&self, template: Template, params: &Params) -> Result<String, minijinja::Error> {
        Ok(self
            .render(template, params, &Context::new("", "", ""))?
            .subject)
    }
}

fn source(t: Template) -> &'static str {
    match t {
        Template::EmailVerification => include_str!("../templates/email_verification.txt"),
        Template::EmailChanged => include_str!("../templates/email_changed.txt"),
        Template::PasswordReset => include_str!("../templates/password_reset.txt"),
        Template::HoldReceipt => include_str!("../templates/hold_receipt.txt"),
        Template::HoldConfirmed => include_str!("../templates/hold_confirmed.txt"),
        Template::HoldReady => include_str!("../templates/hold_ready.txt"),
        Template::HoldExpired => include_str!("../templates/hold_expired.txt"),
        Template::HoldRejected => include_str!("../templates/hold_rejected.txt"),
        Template::HoldCancelled => include_str!("../templates/hold_cancelled.txt"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx() -> Context<'static> {
        Context::new(
            "杵築 花子",
            "http://localhost:8080/",
            "library@city.kitsuki.lg.jp",
        )
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

    fn norwegian_wood() -> TitleInfo {
        TitleInfo {
            title_id: "t".into(),
            title: "ノルウェイの森 上".into(),
            creators: "村上春樹 著".into(),
        }
    }

    fn hold_params(branch: &str, reason: &str) -> Params {
        Params {
            hold_id: "h-1".into(),
            title_id: "t".into(),
            pickup_branch: branch.into(),
            reason: reason.into(),
            ..Params::default()
        }
    }

    #[test]
    fn the_hold_mails_have_the_subjects_of_the_guide_n1() {
        let t = Texts::new().unwrap();
        let p = hold_params("ota", "理由");
        let subjects = [
            (Template::HoldReceipt, "仮予約受付け内容のお知らせ"),
            (Template::HoldConfirmed, "予約確定のお知らせ"),
            (Template::HoldReady, "資料について用意ができました"),
            (Template::HoldExpired, "お取り置き期間終了のお知らせ"),
            (Template::HoldRejected, "予約をお受けできませんでした"),
            (Template::HoldCancelled, "予約取消のお知らせ"),
        ];
        for (template, subject) in subjects {
            assert_eq!(t.subject(template, &p).unwrap(), subject);
        }
    }

    #[test]
    fn every_hold_mail_names_the_title_and_the_pickup_branch_n1_b1() {
        let t = Texts::new().unwrap();
        let title = norwegian_wood();
        let cx = Context {
            title: Some(&title),
            ready_until: Some(time::macros::date!(2026 - 04 - 08)),
            ..cx()
        };
        for (branch, name) in [
            ("kitsuki", "杵築市立図書館"),
            ("yamaga", "山香図書室"),
            ("ota", "大田図書室"),
        ] {
            for template in Template::ALL.into_iter().filter(|t| t.is_hold()) {
                let m = t
                    .render(template, &hold_params(branch, "資料破損のため"), &cx)
                    .unwrap();
                assert!(
                    m.body
                        .contains("\n　資料名：ノルウェイの森 上\n　著者名：村上春樹 著\n"),
                    "{template:?}: {}",
                    m.body
                );
                assert!(
                    m.body.contains(&format!("\n　受取館：{name}\n")),
                    "{template:?}: {}",
                    m.body
                );
                assert!(m.body.starts_with("杵築 花子 様\n\n杵築市立図書館です。\n"));
                assert!(!m.body.contains("\n\n\n"), "{template:?}: {}", m.body);
            }
        }
    }

    #[test]
    fn the_receipt_says_the_hold_is_not_yet_confirmed_h5() {
        let t = Texts::new().unwrap();
        let m = t
            .render(Template::HoldReceipt, &hold_params("yamaga", ""), &cx())
            .unwrap();
        assert!(m.body.contains("仮予約として受け付けました"), "{}", m.body);
        assert!(
            m.body
                .contains("このメールではまだ予約は確定しておりません")
        );
        assert!(m.body.contains("「予約確定のお知らせ」"));
        let confirmed = t
            .render(Template::HoldConfirmed, &hold_params("yamaga", ""), &cx())
            .unwrap();
        assert!(confirmed.body.contains("予約を受け付け完了いたしました"));
        assert!(!confirmed.body.contains("確定しておりません"));
    }

    #[test]
    fn the_ready_mail_says_until_when_the_item_is_kept_h8_h9() {
        let t = Texts::new().unwrap();
        let title = norwegian_wood();
        let cx = Context {
            title: Some(&title),
            ready_until: Some(time::macros::date!(2026 - 04 - 10)),
            ..cx()
        };
        let m = t
            .render(Template::HoldReady, &hold_params("yamaga", ""), &cx)
            .unwrap();
        assert_eq!(m.subject, "資料について用意ができました");
        assert!(
            m.body
                .contains("\n　受取館：山香図書室\n　お取り置き期限：2026年4月10日（金）まで\n"),
            "{}",
            m.body
        );
        assert!(m.body.contains("このメールの送信から1週間"));
        assert!(
            m.body
                .contains("利用者カードをお持ちになって、山香図書室までお越しください")
        );
    }

    #[test]
    fn a_rejection_or_cancellation_gives_the_librarys_reason_n1() {
        let t = Texts::new().unwrap();
        for template in [Template::HoldRejected, Template::HoldCancelled] {
            let m = t
                .render(template, &hold_params("kitsuki", "資料破損のため"), &cx())
                .unwrap();
            assert!(m.body.contains("\n　理由：資料破損のため\n"), "{}", m.body);
            let without = t
                .render(template, &hold_params("kitsuki", ""), &cx())
                .unwrap();
            assert!(!without.body.contains("理由："), "{}", without.body);
        }
    }

    #[test]
    fn a_hold_mail_without_a_known_title_points_to_the_patrons_page() {
        let t = Texts::new().unwrap();
        let m = t
            .render(Template::HoldExpired, &hold_params("ota", ""), &cx())
            .unwrap();
        assert!(
            m.body
                .contains("資料名：（Webサービスの「ご利用状況参照」でご確認ください）"),
            "{}",
            m.body
        );
        assert!(!m.body.contains("著者名"));
    }
}
