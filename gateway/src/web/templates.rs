//! The page templates (minijinja, compiled into the binary from `templates/`) and the site's
//! one stylesheet (`static/site.css`). Templates are named `*.html`, which turns HTML
//! auto-escaping on for every value they print.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use kitsuki_proto::Branch;
use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, Error, Output, State, UndefinedBehavior};
use serde::Serialize;

/// The stylesheet served at `/static/site.css`.
pub const SITE_CSS: &str = include_str!("../../static/site.css");

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    (
        "search_form.html",
        include_str!("../templates/search_form.html"),
    ),
    ("index.html", include_str!("../templates/index.html")),
    ("results.html", include_str!("../templates/results.html")),
    ("title.html", include_str!("../templates/title.html")),
    ("error.html", include_str!("../templates/error.html")),
    ("notice.html", include_str!("../templates/notice.html")),
    (
        "csrf_field.html",
        include_str!("../templates/csrf_field.html"),
    ),
    ("login.html", include_str!("../templates/login.html")),
    ("my.html", include_str!("../templates/my.html")),
    ("my_email.html", include_str!("../templates/my_email.html")),
    (
        "my_email_sent.html",
        include_str!("../templates/my_email_sent.html"),
    ),
    (
        "my_password.html",
        include_str!("../templates/my_password.html"),
    ),
    (
        "password_forgot.html",
        include_str!("../templates/password_forgot.html"),
    ),
    (
        "password_forgot_sent.html",
        include_str!("../templates/password_forgot_sent.html"),
    ),
    (
        "password_reset.html",
        include_str!("../templates/password_reset.html"),
    ),
    (
        "email_verify.html",
        include_str!("../templates/email_verify.html"),
    ),
    (
        "staff_login.html",
        include_str!("../templates/staff_login.html"),
    ),
    (
        "staff_menu.html",
        include_str!("../templates/staff_menu.html"),
    ),
    (
        "staff_patron_new.html",
        include_str!("../templates/staff_patron_new.html"),
    ),
    (
        "staff_patron_created.html",
        include_str!("../templates/staff_patron_created.html"),
    ),
    (
        "staff_web_service.html",
        include_str!("../templates/staff_web_service.html"),
    ),
    (
        "staff_slip.html",
        include_str!("../templates/staff_slip.html"),
    ),
    (
        "staff_readings.html",
        include_str!("../templates/staff_readings.html"),
    ),
    (
        "hold_form.html",
        include_str!("../templates/hold_form.html"),
    ),
    (
        "hold_review.html",
        include_str!("../templates/hold_review.html"),
    ),
    (
        "hold_done.html",
        include_str!("../templates/hold_done.html"),
    ),
    (
        "hold_cancel.html",
        include_str!("../templates/hold_cancel.html"),
    ),
    (
        "staff_desk.html",
        include_str!("../templates/staff_desk.html"),
    ),
    (
        "staff_desk_loans.html",
        include_str!("../templates/staff_desk_loans.html"),
    ),
    (
        "staff_list.html",
        include_str!("../templates/staff_list.html"),
    ),
    (
        "staff_provisional.html",
        include_str!("../templates/staff_provisional.html"),
    ),
    (
        "dev_banner.html",
        include_str!("../templates/dev_banner.html"),
    ),
    (
        "dev_outbox.html",
        include_str!("../templates/dev_outbox.html"),
    ),
    ("dev_mail.html", include_str!("../templates/dev_mail.html")),
];

/// A short fingerprint of the stylesheet, put in its URL so that it can be cached for a
/// year and still change the moment a new version is deployed.
pub static CSS_VERSION: LazyLock<String> = LazyLock::new(|| {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let hash = SITE_CSS.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{:08x}", hash >> 32)
});

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // A misspelt variable fails the render (and the tests) instead of printing nothing.
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    env.set_formatter(html_formatter);
    for (name, source) in TEMPLATES {
        // The templates are part of the binary; one that does not parse is a build defect
        // that the template tests catch.
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("template {name} does not parse: {e}"));
    }
    env.add_global("css_version", CSS_VERSION.as_str());
    env.add_global(
        "branch_names",
        Value::from(Branch::ALL.iter().map(|b| b.name_ja()).collect::<Vec<_>>()),
    );
    env
});

/// minijinja's HTML escaping also turns `/` into `&#x2f;`, which is harmless but makes
/// 「杵築 1/2」 and every URL unreadable in the page source (and for anyone searching it).
/// `/` cannot end a quoted attribute or start a tag, so escaping the five characters that
/// can is enough.
fn html_formatter(out: &mut Output, state: &mut State, value: &Value) -> Result<(), Error> {
    if matches!(state.auto_escape(), AutoEscape::Html) && !value.is_safe() {
        let text = value.to_string();
        out.write_str(&escape_html(&text)).map_err(Error::from)
    } else {
        minijinja::escape_formatter(out, state, value)
    }
}

/// Escapes the characters that end text or a quoted attribute value in HTML.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Renders one template with `context`.
pub fn render(name: &str, context: Value) -> Result<String, minijinja::Error> {
    ENV.get_template(name)?.render(context)
}

/// Renders a page: its own `context` plus `layout`, which `base.html` reads (header, the
/// rule P5 banner, the CSRF token of the page's forms).
pub fn render_page(
    name: &str,
    layout: &crate::web::LayoutView,
    context: Value,
) -> Result<String, minijinja::Error> {
    render(
        name,
        minijinja::context! { layout => to_value(layout), ..context },
    )
}

/// Converts a serializable view into a template value (through JSON, since this build of
/// minijinja has no serde support of its own).
pub fn to_value<T: Serialize>(value: &T) -> Value {
    match serde_json::to_value(value) {
        Ok(json) => from_json(json),
        Err(e) => {
            tracing::error!(error = %e, "view did not serialize");
            Value::UNDEFINED
        }
    }
}

fn from_json(json: serde_json::Value) -> Value {
    use serde_json::Value as J;
    match json {
        J::Null => Value::from(()),
        J::Bool(b) => Value::from(b),
        J::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or_default())
            }
        }
        J::String(s) => Value::from(s),
        J::Array(items) => Value::from(items.into_iter().map(from_json).collect::<Vec<_>>()),
        J::Object(map) => Value::from(
            map.into_iter()
                .map(|(k, v)| (k, from_json(v)))
                .collect::<BTreeMap<String, Value>>(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn every_template_parses() {
        for (name, _) in TEMPLATES {
            assert!(ENV.get_template(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn values_keep_their_shape_through_json() {
        #[derive(Serialize)]
        struct V {
            n: u32,
            s: &'static str,
            o: Option<i32>,
            list: Vec<bool>,
        }
        let v = to_value(&V {
            n: 3,
            s: "<b>",
            o: None,
            list: vec![true],
        });
        let mut env = Environment::new();
        env.add_template("t.html", "{{ v.n }} {{ v.s }} {% if v.o is none %}none{% endif %} {% if v.list[0] %}yes{% endif %}")
            .unwrap();
        let out = env
            .get_template("t.html")
            .unwrap()
            .render(context! { v => v })
            .unwrap();
        assert_eq!(out, "3 &lt;b&gt; none yes");
    }

    #[test]
    fn html_escaping_covers_the_five_dangerous_characters_and_keeps_slashes() {
        assert_eq!(
            escape_html("<a href=\"x\" title='y'>&</a> 1/2"),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt; 1/2"
        );
    }

    #[test]
    fn the_css_version_is_a_short_stable_fingerprint() {
        assert_eq!(CSS_VERSION.len(), 8);
        assert!(CSS_VERSION.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
