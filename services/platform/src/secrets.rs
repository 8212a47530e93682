//! Secrets from files: the `*_FILE` convention of Docker and Kubernetes images. Every
//! secret-bearing setting `KITSUKI_X` may instead be given as `KITSUKI_X_FILE`, the path of
//! a file holding the value (a mounted Secret), so that the secret is in no process
//! environment: an environment leaks through `/proc/PID/environ`, `kubectl describe`, crash
//! dumps and child processes.
//!
//! The settings: `KITSUKI_ADMIN_PASSWORD`, `KITSUKI_SMTP_URL`, `KITSUKI_STAFF_PASSWORD`, and
//! the database password, which has no variable of its own: `KITSUKI_DATABASE_PASSWORD_FILE`
//! puts the file's password into `KITSUKI_DATABASE_URL` (then a URL without a secret, fit for
//! plain configuration).
//!
//! Rules (a start-up error otherwise, naming the variable and the path, never the content):
//! a variable and its `_FILE` variant are not both set; the file is readable UTF-8; its
//! trailing newlines are trimmed (files written by `echo` or editors end with one) and
//! what remains is not empty. That is the shell's `$(cat FILE)`, which the images' own
//! `_FILE` handling and the PostgreSQL init script (deploy/postgres/init-databases.sh) use
//! on the same Secret, so both ends read the same password: a `\r` or a space stays part
//! of the value. An empty variable counts as unset, as compose passes `${X:-}` through.

use std::path::{Path, PathBuf};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// The variable naming the file of the database password.
pub const DATABASE_PASSWORD_FILE: &str = "KITSUKI_DATABASE_PASSWORD_FILE";

/// Why a secret could not be had. No variant holds a secret, so every message may be
/// printed and logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("both {name} and {name}_FILE are set: set only one of them")]
    BothSet { name: String },
    #[error("cannot read the file {path} named by {var}: {reason}")]
    Unreadable {
        var: String,
        path: PathBuf,
        reason: String,
    },
    #[error("the file {path} named by {var} is empty")]
    Empty { var: String, path: PathBuf },
    #[error("{name} is not valid UTF-8")]
    NotUnicode { name: String },
    #[error(
        "{DATABASE_PASSWORD_FILE} is set but KITSUKI_DATABASE_URL is not a postgres:// URL \
         (a sqlite:// database has no password)"
    )]
    NotPostgres,
    #[error(
        "{DATABASE_PASSWORD_FILE} is set but KITSUKI_DATABASE_URL names no user for the \
         password (postgres://USER@host:port/database)"
    )]
    NoUser,
    #[error(
        "{DATABASE_PASSWORD_FILE} is set but KITSUKI_DATABASE_URL has a `password` query \
         parameter too, which would win: remove it"
    )]
    PasswordInQuery,
}

/// The name of a setting's file variant: `KITSUKI_X` → `KITSUKI_X_FILE`.
pub fn file_variable(name: &str) -> String {
    format!("{name}_FILE")
}

/// The secret `name` from the process environment: its value, or the content of the file
/// `name_FILE` names, or `None` when neither is set.
pub fn from_env(name: &str) -> Result<Option<String>, SecretError> {
    let value = env_value(name)?;
    let file = env_path(&file_variable(name));
    resolve(name, value, file.as_deref())
}

/// The secret `name` given as `value` (the variable, or its flag) and `file` (the path of
/// `name_FILE`): one of them, never both.
pub fn resolve(
    name: &str,
    value: Option<String>,
    file: Option<&Path>,
) -> Result<Option<String>, SecretError> {
    match (value.filter(|v| !v.is_empty()), file) {
        (Some(_), Some(_)) => Err(SecretError::BothSet {
            name: name.to_string(),
        }),
        (Some(v), None) => Ok(Some(v)),
        (None, Some(path)) => read_file(&file_variable(name), path).map(Some),
        (None, None) => Ok(None),
    }
}

/// Reads the secret file `path` that the variable `var` names.
pub fn read_file(var: &str, path: &Path) -> Result<String, SecretError> {
    // The I/O error's text names the cause (missing, permission, not UTF-8), never bytes
    // of the file.
    let read = std::fs::read_to_string(path).map_err(|e| e.to_string());
    from_file_content(var, path, read)
}

/// A secret file's content as the setting's value: trailing newlines trimmed, not empty.
pub fn from_file_content(
    var: &str,
    path: &Path,
    read: Result<String, String>,
) -> Result<String, SecretError> {
    let content = read.map_err(|reason| SecretError::Unreadable {
        var: var.to_string(),
        path: path.to_path_buf(),
        reason,
    })?;
    let secret = trim_newlines(&content);
    if secret.is_empty() {
        return Err(SecretError::Empty {
            var: var.to_string(),
            path: path.to_path_buf(),
        });
    }
    Ok(secret.to_string())
}

/// The content without its trailing `\n`s, as `$(cat FILE)` in a shell; other whitespace
/// (`\r` too) is kept.
pub fn trim_newlines(content: &str) -> &str {
    content.trim_end_matches('\n')
}

/// `url` with the password of the file `KITSUKI_DATABASE_PASSWORD_FILE` names, when that
/// variable is set; otherwise `url` as it is.
pub fn database_url_from_env(url: &str) -> Result<String, SecretError> {
    let Some(path) = env_path(DATABASE_PASSWORD_FILE) else {
        return Ok(url.to_string());
    };
    let password = read_file(DATABASE_PASSWORD_FILE, &path)?;
    if url_has_password(url) {
        // Not an error: the URL may come from shared configuration written before the
        // password moved to a file. The file is the one that counts.
        tracing::warn!(
            "KITSUKI_DATABASE_URL has a password; the one of {DATABASE_PASSWORD_FILE} replaces it"
        );
    }
    with_password(url, &password)
}

/// Characters kept as they are in the userinfo of a URL: RFC 3986's unreserved set. Every
/// other byte is percent-encoded, which every URL parser decodes (sqlx does).
const USERINFO_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `password` percent-encoded for the userinfo of a URL.
pub fn encode_userinfo(password: &str) -> String {
    utf8_percent_encode(password, USERINFO_KEEP).to_string()
}

/// The parts of a `postgres://` URL around its userinfo.
struct PgUrl<'a> {
    scheme: &'a str,
    user: &'a str,
    password: Option<&'a str>,
    host_and_rest: &'a str,
    query: Option<&'a str>,
}

fn split_pg_url(url: &str) -> Result<Option<PgUrl<'_>>, SecretError> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Ok(None);
    };
    if scheme != "postgres" && scheme != "postgresql" {
        return Ok(None);
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    // The userinfo ends at the authority's last `@` (an encoded one is `%40`).
    let Some(at) = rest[..authority_end].rfind('@') else {
        return Err(SecretError::NoUser);
    };
    let userinfo = &rest[..at];
    let (user, password) = match userinfo.split_once(':') {
        Some((u, p)) => (u, Some(p)),
        None => (userinfo, None),
    };
    let query = rest[authority_end..]
        .split_once('?')
        .map(|(_, q)| q.split('#').next().unwrap_or_default());
    Ok(Some(PgUrl {
        scheme,
        user,
        password,
        host_and_rest: &rest[at + 1..],
        query,
    }))
}

fn url_has_password(url: &str) -> bool {
    matches!(
        split_pg_url(url),
        Ok(Some(PgUrl {
            password: Some(_),
            ..
        }))
    )
}

/// `url` (`postgres://` or `postgresql://`, with a user) with `password` in its userinfo,
/// percent-encoded, replacing any password the URL has.
pub fn with_password(url: &str, password: &str) -> Result<String, SecretError> {
    let parts = split_pg_url(url)?.ok_or(SecretError::NotPostgres)?;
    if parts.user.is_empty() {
        return Err(SecretError::NoUser);
    }
    let password_param = parts.query.is_some_and(|q| {
        q.split('&')
            .any(|kv| kv.split('=').next() == Some("password"))
    });
    if password_param {
        return Err(SecretError::PasswordInQuery);
    }
    Ok(format!(
        "{}://{}:{}@{}",
        parts.scheme,
        parts.user,
        encode_userinfo(password),
        parts.host_and_rest
    ))
}

/// An environment variable's value; empty counts as unset.
fn env_value(name: &str) -> Result<Option<String>, SecretError> {
    match std::env::var_os(name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .into_string()
            .map(Some)
            .map_err(|_| SecretError::NotUnicode {
                name: name.to_string(),
            }),
    }
}

/// An environment variable holding a path; empty counts as unset.
fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(content: &[u8]) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("kitsuki-secrets-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret");
        std::fs::write(&path, content).unwrap();
        path
    }

    /// What sqlx makes of a URL: the decoded user and password it will send.
    fn as_sqlx_reads(url: &str) -> (String, Option<String>) {
        use std::str::FromStr;
        let opts = sqlx::postgres::PgConnectOptions::from_str(url).unwrap();
        (
            opts.get_username().to_string(),
            // No getter for the password: the URL sqlx rebuilds carries it (encoded).
            sqlx::ConnectOptions::to_url_lossy(&opts)
                .password()
                .map(|p| {
                    percent_encoding::percent_decode_str(p)
                        .decode_utf8()
                        .unwrap()
                        .into_owned()
                }),
        )
    }

    #[test]
    fn trailing_newlines_are_trimmed_and_nothing_else() {
        assert_eq!(trim_newlines("s3cret\n"), "s3cret");
        // As the shell's `$(cat FILE)` of the PostgreSQL init script reads it.
        assert_eq!(trim_newlines("s3cret\r\n"), "s3cret\r");
        assert_eq!(trim_newlines("s3cret\n\n"), "s3cret");
        assert_eq!(trim_newlines("s3cret"), "s3cret");
        assert_eq!(trim_newlines(" pass word \n"), " pass word ");
        assert_eq!(trim_newlines("two\nlines\n"), "two\nlines");
        assert_eq!(trim_newlines("\n"), "");
    }

    #[test]
    fn file_content_is_the_value_and_an_empty_file_is_refused() {
        let p = Path::new("/run/secrets/x");
        assert_eq!(
            from_file_content("KITSUKI_X_FILE", p, Ok("v\n".into())),
            Ok("v".to_string())
        );
        for empty in ["", "\n", "\n\n"] {
            assert_eq!(
                from_file_content("KITSUKI_X_FILE", p, Ok(empty.into())),
                Err(SecretError::Empty {
                    var: "KITSUKI_X_FILE".into(),
                    path: p.into()
                })
            );
        }
        let e = from_file_content("KITSUKI_X_FILE", p, Err("permission denied".into()));
        assert!(matches!(e, Err(SecretError::Unreadable { .. })));
    }

    #[test]
    fn a_value_or_a_file_but_never_both() {
        let file = temp_file(b"from-file\n");
        assert_eq!(
            resolve("KITSUKI_X", Some("v".into()), None),
            Ok(Some("v".into()))
        );
        assert_eq!(
            resolve("KITSUKI_X", None, Some(&file)),
            Ok(Some("from-file".into()))
        );
        assert_eq!(resolve("KITSUKI_X", None, None), Ok(None));
        // An empty variable is unset (compose passes `${X:-}` through).
        assert_eq!(resolve("KITSUKI_X", Some(String::new()), None), Ok(None));
        assert_eq!(
            resolve("KITSUKI_X", Some(String::new()), Some(&file)),
            Ok(Some("from-file".into()))
        );
        let both = resolve("KITSUKI_X", Some("v".into()), Some(&file)).unwrap_err();
        assert_eq!(
            both,
            SecretError::BothSet {
                name: "KITSUKI_X".into()
            }
        );
        assert_eq!(
            both.to_string(),
            "both KITSUKI_X and KITSUKI_X_FILE are set: set only one of them"
        );
    }

    #[test]
    fn errors_name_the_variable_and_the_path_but_never_the_content() {
        let missing = std::env::temp_dir().join("kitsuki-no-such-dir/secret");
        let e = read_file("KITSUKI_ADMIN_PASSWORD_FILE", &missing).unwrap_err();
        let shown = e.to_string();
        assert!(shown.contains("KITSUKI_ADMIN_PASSWORD_FILE"), "{shown}");
        assert!(shown.contains(&missing.display().to_string()), "{shown}");

        let empty = temp_file(b"\n");
        let shown = read_file("KITSUKI_SMTP_URL_FILE", &empty)
            .unwrap_err()
            .to_string();
        assert!(shown.contains("KITSUKI_SMTP_URL_FILE") && shown.contains("empty"));

        let binary = temp_file(b"pw-\xff\xfe-tail");
        let shown = format!("{:?}", read_file("KITSUKI_X_FILE", &binary).unwrap_err());
        assert!(!shown.contains("pw-") && !shown.contains("tail"), "{shown}");

        let both = SecretError::BothSet {
            name: "KITSUKI_ADMIN_PASSWORD".into(),
        };
        assert!(both.to_string().contains("KITSUKI_ADMIN_PASSWORD_FILE"));
    }

    #[test]
    fn special_characters_are_percent_encoded() {
        assert_eq!(encode_userinfo("abc-._~XYZ09"), "abc-._~XYZ09");
        assert_eq!(encode_userinfo("p@ss"), "p%40ss");
        assert_eq!(encode_userinfo("a:b/c%d#e?f"), "a%3Ab%2Fc%25d%23e%3Ff");
        assert_eq!(encode_userinfo("x y+z&w=v"), "x%20y%2Bz%26w%3Dv");
        assert_eq!(
            encode_userinfo("[]!$'()*,;"),
            "%5B%5D%21%24%27%28%29%2A%2C%3B"
        );
        assert_eq!(encode_userinfo("図書"), "%E5%9B%B3%E6%9B%B8");
    }

    #[test]
    fn the_password_goes_into_a_url_without_one() {
        assert_eq!(
            with_password("postgres://catalog@postgres:5432/catalog", "hex0123"),
            Ok("postgres://catalog:hex0123@postgres:5432/catalog".into())
        );
        assert_eq!(
            with_password("postgresql://u@h/db?sslmode=require", "p@:/%#?"),
            Ok("postgresql://u:p%40%3A%2F%25%23%3F@h/db?sslmode=require".into())
        );
        assert_eq!(
            with_password("postgres://u@h", "pw"),
            Ok("postgres://u:pw@h".into())
        );
    }

    #[test]
    fn the_password_replaces_the_one_the_url_has() {
        assert!(url_has_password("postgres://u:old@h/db"));
        assert!(!url_has_password("postgres://u@h/db"));
        assert!(!url_has_password("sqlite://./data/x.db"));
        assert_eq!(
            with_password("postgres://u:old@h:5432/db", "new"),
            Ok("postgres://u:new@h:5432/db".into())
        );
        // An old password with an `@` of its own, not encoded: the last `@` ends it.
        assert_eq!(
            with_password("postgres://u:o@ld@h/db", "new"),
            Ok("postgres://u:new@h/db".into())
        );
        assert_eq!(
            with_password("postgres://u:@h/db", "new"),
            Ok("postgres://u:new@h/db".into())
        );
    }

    #[test]
    fn sqlx_reads_back_the_exact_user_and_password() {
        for password in ["p@ss:w/rd%#?", "a b&c=d", "図書館-pw", "%41", "x'\"\\"] {
            let url = with_password("postgres://kitsuki_u@127.0.0.1:5432/db", password).unwrap();
            assert_eq!(
                as_sqlx_reads(&url),
                ("kitsuki_u".to_string(), Some(password.to_string())),
                "{url}"
            );
        }
    }

    #[test]
    fn a_password_file_needs_a_postgres_url_with_a_user() {
        for url in [
            "sqlite://./data/catalog.db",
            "sqlite::memory:",
            "mysql://u@h/db",
            "not a url",
        ] {
            assert_eq!(
                with_password(url, "pw"),
                Err(SecretError::NotPostgres),
                "{url}"
            );
        }
        for url in [
            "postgres://postgres:5432/catalog",
            "postgres://:old@h/db",
            "postgres:///db",
            "postgres://h/db?x=a@b",
        ] {
            assert_eq!(with_password(url, "pw"), Err(SecretError::NoUser), "{url}");
        }
        assert!(
            SecretError::NotPostgres
                .to_string()
                .contains(DATABASE_PASSWORD_FILE)
        );
    }

    #[test]
    fn a_password_query_parameter_is_refused() {
        assert_eq!(
            with_password("postgres://u@h/db?sslmode=disable&password=x", "pw"),
            Err(SecretError::PasswordInQuery)
        );
        // Other parameters, and `password` in the fragment, are no password parameter.
        assert!(with_password("postgres://u@h/db?passwords=1#password=x", "pw").is_ok());
    }
}
