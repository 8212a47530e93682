//! Secrets from files (the `*_FILE` variables, `kitsuki_platform::secrets`) in the real
//! binary: the patron role started with a `KITSUKI_DATABASE_URL` that has no password, the
//! password in `KITSUKI_DATABASE_PASSWORD_FILE` and the bootstrap admin's in
//! `KITSUKI_ADMIN_PASSWORD_FILE`; and the roles that refuse to start on a variable set
//! twice, a missing or empty file, or a password file for a SQLite URL.
//!
//! The machine's PostgreSQL trusts every login on loopback, so it never asks for the
//! password and cannot show that the right one arrives. The test therefore puts a small
//! gate in front of it ([`PasswordGate`]): it asks each client for its password in the
//! PostgreSQL protocol (cleartext request; loopback only) and passes the connection on to
//! the real server only when user and password are the expected ones. The role runs on the
//! real database through it, and `pg_stat_activity` shows its sessions under the test's
//! own login role, the user of the URL.

mod common;

use std::io::Read;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, start, temp_dir, wait_ready};
use kitsuki_platform::testing;
use serde_json::json;
use sqlx::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// PostgreSQL protocol codes of the requests a client may send before its startup message.
const SSL_REQUEST: i32 = 80877103;
const GSSENC_REQUEST: i32 = 80877104;

/// A password-checking front of the real PostgreSQL server (see the module doc).
struct PasswordGate {
    addr: SocketAddr,
    /// Every login tried: the user, and whether user and password were the expected ones.
    logins: Arc<Mutex<Vec<(String, bool)>>>,
}

impl PasswordGate {
    /// Listens on a free loopback port, in a thread of its own (the test thread blocks
    /// while it starts processes).
    fn start(upstream: SocketAddr, user: &str, password: &str) -> PasswordGate {
        let logins = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let (user, password, seen) = (user.to_string(), password.to_string(), logins.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        continue;
                    };
                    let (user, password, seen) = (user.clone(), password.clone(), seen.clone());
                    tokio::spawn(async move {
                        let _ = gate(client, upstream, &user, &password, &seen).await;
                    });
                }
            });
        });
        PasswordGate {
            addr: rx.recv_timeout(Duration::from_secs(10)).unwrap(),
            logins,
        }
    }

    fn logins(&self) -> Vec<(String, bool)> {
        self.logins.lock().unwrap().clone()
    }
}

/// One client: its startup message, the password asked for and checked, then the bytes
/// passed both ways between it and the real server (which, trusting loopback, answers
/// the forwarded startup with AuthenticationOk).
async fn gate(
    mut client: tokio::net::TcpStream,
    upstream: SocketAddr,
    user: &str,
    password: &str,
    seen: &Mutex<Vec<(String, bool)>>,
) -> std::io::Result<()> {
    let startup = loop {
        let len = client.read_i32().await?;
        let mut body = vec![0u8; usize::try_from(len - 4).unwrap_or(0)];
        client.read_exact(&mut body).await?;
        let code = i32::from_be_bytes(body[..4].try_into().unwrap());
        if code == SSL_REQUEST || code == GSSENC_REQUEST {
            // No TLS here: the client goes on in plain text (sslmode=prefer).
            client.write_all(b"N").await?;
            continue;
        }
        let mut message = len.to_be_bytes().to_vec();
        message.extend_from_slice(&body);
        break message;
    };
    // Startup parameters: NUL-terminated name/value pairs after length and version.
    let fields: Vec<&[u8]> = startup[8..].split(|b| *b == 0).collect();
    let given_user = fields
        .chunks(2)
        .find(|kv| kv[0] == b"user")
        .and_then(|kv| kv.get(1))
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default();
    // AuthenticationCleartextPassword.
    client.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]).await?;
    let tag = client.read_u8().await?;
    let len = client.read_i32().await?;
    let mut body = vec![0u8; usize::try_from(len - 4).unwrap_or(0)];
    client.read_exact(&mut body).await?;
    let given_password = body.strip_suffix(&[0]).unwrap_or(&body);
    let ok = tag == b'p' && given_user == user && given_password == password.as_bytes();
    seen.lock().unwrap().push((given_user, ok));
    if !ok {
        let mut fields = Vec::new();
        for (code, text) in [
            (b'S', "FATAL"),
            (b'C', "28P01"),
            (b'M', "password authentication failed (test gate)"),
        ] {
            fields.push(code);
            fields.extend_from_slice(text.as_bytes());
            fields.push(0);
        }
        fields.push(0);
        let mut error = vec![b'E'];
        error.extend_from_slice(&(fields.len() as i32 + 4).to_be_bytes());
        error.extend_from_slice(&fields);
        client.write_all(&error).await?;
        return Ok(());
    }
    let mut server = tokio::net::TcpStream::connect(upstream).await?;
    server.write_all(&startup).await?;
    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}

/// Login roles are the server's, not a database's, so the sweep of old test databases
/// (scripts/test) leaves those of a run that failed midway: each run drops the ones that
/// own no database any more (a role of a running test owns its database from its first
/// moment on).
async fn sweep_leftover_roles(conn: &mut sqlx::PgConnection) {
    let left: Vec<String> = sqlx::query_scalar(
        "SELECT rolname::text FROM pg_roles r WHERE rolname LIKE 'kitsuki\\_test\\_role\\_%' \
         AND NOT EXISTS (SELECT 1 FROM pg_database d WHERE d.datdba = r.oid)",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap_or_default();
    for role in left {
        // Names of this test's pattern only (checked by the LIKE above).
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP ROLE IF EXISTS {role}")))
            .execute(&mut *conn)
            .await;
    }
}

/// Writes a secret file readable by its owner only, as a mounted Secret is.
fn secret_file(dir: &Path, name: &str, content: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
    path
}

/// The environment a process was started with (`/proc/PID/environ`), as anyone who may
/// read that file sees it.
fn environ_of(pid: u32) -> String {
    let mut raw = Vec::new();
    std::fs::File::open(format!("/proc/{pid}/environ"))
        .unwrap()
        .read_to_end(&mut raw)
        .unwrap();
    String::from_utf8_lossy(&raw).replace('\0', "\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patron_takes_its_database_and_admin_passwords_from_files() {
    let dir = temp_dir("secret-files");
    let data = dir.to_string_lossy().to_string();
    let prefix = testing::unique_prefix();
    let nats = testing::nats_url();

    // A fresh database owned by a login role of this test, with a password full of the
    // characters a URL's userinfo cannot carry as they are.
    let database_url = testing::fresh_pg_database().await.unwrap();
    let database = kitsuki_platform::db::database_name(&database_url).unwrap();
    let role = format!("kitsuki_test_role_{}", testing::unique_id());
    let db_password = format!("p@ss:w/rd%#?& {}", testing::unique_id());
    let admin = testing::pg_admin_url();
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sweep_leftover_roles(&mut conn).await;
    // Names and password are made here (hex and fixed characters, no quote), never input.
    // One transaction: no other run's sweep sees the role before it owns its database.
    let mut tx = conn.begin().await.unwrap();
    for sql in [
        format!("CREATE ROLE {role} LOGIN PASSWORD '{db_password}'"),
        // The owner may create tables in the public schema (PostgreSQL 15+).
        format!("ALTER DATABASE {database} OWNER TO {role}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let server = sqlx::postgres::PgConnectOptions::from_str(&admin).unwrap();
    let upstream = (server.get_host(), server.get_port())
        .to_socket_addrs()
        .unwrap()
        .next()
        .unwrap();
    let gate = PasswordGate::start(upstream, &role, &db_password);

    // The URL as plain configuration: the user, no password.
    let url = format!("postgres://{role}@{}/{database}", gate.addr);
    let admin_pw = common::random_password();
    let db_file = secret_file(&dir, "db-password", &format!("{db_password}\n"));
    let admin_file = secret_file(&dir, "admin-password", &format!("{admin_pw}\n"));
    let (db_file, admin_file) = (db_file.to_string_lossy(), admin_file.to_string_lossy());
    let patron = start(
        "patron",
        &["patron", "--listen", "127.0.0.1:0"],
        &[
            ("KITSUKI_NATS_URL", nats.as_str()),
            ("KITSUKI_BUS_PREFIX", prefix.as_str()),
            ("KITSUKI_DATA_DIR", data.as_str()),
            ("KITSUKI_DATABASE_URL", url.as_str()),
            ("KITSUKI_DATABASE_PASSWORD_FILE", &db_file),
            ("KITSUKI_ADMIN_PASSWORD_FILE", &admin_file),
        ],
        &dir,
    );
    let http = reqwest::Client::new();
    wait_ready(&http, &patron.url).await;

    // Every connection of the pool logged in through the gate with the file's password
    // (decoded by the driver from the URL the binary composed), none with another.
    let logins = gate.logins();
    assert!(!logins.is_empty(), "the patron role never reached the gate");
    assert!(
        logins.iter().all(|(user, ok)| *ok && *user == role),
        "{logins:?}"
    );
    // And the real server has its sessions under the URL's user.
    eventually(
        "a session of the patron role's login",
        Duration::from_secs(10),
        || {
            let (admin, database, role) = (admin.clone(), database.clone(), role.clone());
            async move {
                let mut conn = sqlx::PgConnection::connect(&admin).await.ok()?;
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1 AND usename = $2",
                )
                .bind(&database)
                .bind(&role)
                .fetch_one(&mut conn)
                .await
                .ok()?;
                (n > 0).then_some(())
            }
        },
    )
    .await;
    // Neither secret is in the process's environment.
    let environ = environ_of(patron.pid());
    assert!(environ.contains("KITSUKI_ADMIN_PASSWORD_FILE="));
    assert!(!environ.contains(&db_password) && !environ.contains(&admin_pw));

    // The bootstrap admin has the file's password, without its line end.
    let gateway = start(
        "gateway",
        &[
            "gateway",
            "--listen",
            "127.0.0.1:0",
            // Unused by a staff login; connected lazily.
            "--catalog-url",
            "http://127.0.0.1:9",
            "--patron-url",
            &patron.url,
        ],
        &[],
        &dir,
    );
    wait_ready(&http, &gateway.url).await;
    let session = format!("{}/api/v1/staff/session", gateway.url);
    for (password, status) in [(format!("{admin_pw}\n"), 401), (admin_pw.clone(), 200)] {
        let r = http
            .post(&session)
            .json(&json!({"username": "admin", "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{password:?}");
    }

    drop(gateway);
    drop(patron);
    // The login role is the server's, not the database's: dropped here, after its
    // database, so that runs leave no roles behind.
    for sql in [
        format!("DROP DATABASE {database} WITH (FORCE)"),
        format!("DROP ROLE IF EXISTS {role}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `kitsuki ARGS` with `envs`, which must refuse to start: its exit status and what
/// it wrote on stderr.
fn refused(args: &[&str], envs: &[(&str, &str)], cwd: &Path) -> (i32, String) {
    let mut cmd = Command::new(common::binary());
    cmd.args(args)
        .current_dir(cwd)
        .env("KITSUKI_LOG", "warn")
        .env_remove("KITSUKI_ADMIN_PASSWORD")
        .env_remove("KITSUKI_SMTP_URL")
        .env_remove("KITSUKI_DATABASE_PASSWORD_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let Ok(out) = rx.recv_timeout(Duration::from_secs(30)) else {
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(pid.to_string())
            .status();
        panic!("kitsuki {args:?} did not stop within 30 s; it should refuse to start");
    };
    let out = out.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), stderr)
}

#[test]
fn roles_refuse_to_start_on_a_secret_given_twice_or_a_bad_file() {
    let dir = temp_dir("secret-refusals");
    let nats = testing::nats_url();
    let data = dir.join("data").to_string_lossy().to_string();
    let file_secret = format!("file-secret-{}", testing::unique_id());
    let env_secret = format!("env-secret-{}", testing::unique_id());
    let file = secret_file(&dir, "secret", &format!("{file_secret}\n"));
    let empty = secret_file(&dir, "empty", "\n");
    let missing = dir.join("no-such-file");
    let (file, empty, missing) = (
        file.to_string_lossy().to_string(),
        empty.to_string_lossy().to_string(),
        missing.to_string_lossy().to_string(),
    );
    // A database nobody serves: a role that got past its secrets would fail on it with
    // another message (and later).
    let nowhere = "postgres://nobody@127.0.0.1:1/none";
    let patron = ["patron", "--listen", "127.0.0.1:0"];
    let catalog = ["catalog", "--listen", "127.0.0.1:0"];
    let notification = [
        "notification",
        "--listen",
        "127.0.0.1:0",
        "--patron-url",
        "http://127.0.0.1:9",
        "--catalog-url",
        "http://127.0.0.1:9",
    ];
    let all_in_one = ["--listen", "127.0.0.1:0", "--data-dir", data.as_str()];
    let base = [
        ("KITSUKI_NATS_URL", nats.as_str()),
        ("KITSUKI_DATABASE_URL", nowhere),
    ];
    type Case<'a> = (
        &'a str,
        &'a [&'a str],
        Vec<(&'a str, &'a str)>,
        Vec<&'a str>,
    );
    let cases: Vec<Case> = vec![
        (
            "patron: admin password and its file",
            &patron,
            vec![
                ("KITSUKI_ADMIN_PASSWORD", env_secret.as_str()),
                ("KITSUKI_ADMIN_PASSWORD_FILE", file.as_str()),
            ],
            vec!["KITSUKI_ADMIN_PASSWORD_FILE", "both"],
        ),
        (
            "patron: admin password file missing",
            &patron,
            vec![("KITSUKI_ADMIN_PASSWORD_FILE", missing.as_str())],
            vec!["KITSUKI_ADMIN_PASSWORD_FILE", missing.as_str()],
        ),
        (
            "catalog: database password file missing",
            &catalog,
            vec![("KITSUKI_DATABASE_PASSWORD_FILE", missing.as_str())],
            vec!["KITSUKI_DATABASE_PASSWORD_FILE", missing.as_str()],
        ),
        (
            "catalog: database password file empty",
            &catalog,
            vec![("KITSUKI_DATABASE_PASSWORD_FILE", empty.as_str())],
            vec!["KITSUKI_DATABASE_PASSWORD_FILE", empty.as_str(), "empty"],
        ),
        (
            "notification: SMTP URL and its file",
            &notification,
            vec![
                ("KITSUKI_SMTP_URL", env_secret.as_str()),
                ("KITSUKI_SMTP_URL_FILE", file.as_str()),
            ],
            vec!["KITSUKI_SMTP_URL_FILE", "both"],
        ),
        (
            "all-in-one: admin password and its file",
            &all_in_one,
            vec![
                ("KITSUKI_ADMIN_PASSWORD", env_secret.as_str()),
                ("KITSUKI_ADMIN_PASSWORD_FILE", file.as_str()),
            ],
            vec!["KITSUKI_ADMIN_PASSWORD_FILE", "both"],
        ),
    ];
    for (what, args, extra, expected) in cases {
        let mut envs = base.to_vec();
        envs.extend(extra);
        let (code, stderr) = refused(args, &envs, &dir);
        assert_ne!(code, 0, "{what}: started; stderr: {stderr}");
        for needle in expected {
            assert!(stderr.contains(needle), "{what}: no {needle:?} in {stderr}");
        }
        assert!(
            !stderr.contains(&file_secret) && !stderr.contains(&env_secret),
            "{what}: a secret was printed: {stderr}"
        );
    }

    // A password file goes with a postgres:// URL only.
    let sqlite = format!("sqlite://{}/catalog.db", dir.display());
    let (code, stderr) = refused(
        &catalog,
        &[
            ("KITSUKI_NATS_URL", nats.as_str()),
            ("KITSUKI_DATABASE_URL", sqlite.as_str()),
            ("KITSUKI_DATABASE_PASSWORD_FILE", file.as_str()),
        ],
        &dir,
    );
    assert_ne!(code, 0, "{stderr}");
    assert!(
        stderr.contains("KITSUKI_DATABASE_PASSWORD_FILE") && stderr.contains("sqlite"),
        "{stderr}"
    );
    assert!(!stderr.contains(&file_secret), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
