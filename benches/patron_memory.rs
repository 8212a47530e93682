//! Benchmark (not a test): the resident memory of the patron-account service under logins,
//! the figure issue 8 asks for (the role reached 969 MB after setting up 30 patrons in a
//! soak, from Argon2id's 19 MiB per hash kept by the allocator). Runs the service's own
//! code (`PatronAccounts`, as the patron role serves it, without the gRPC layer) in this
//! process over a fresh SQLite database, and prints this process's resident memory
//! (VmRSS) and its peak (VmHWM): after setting up 30 patrons, after 1,000 logins one after
//! the other, and after 1,000 more sent 40 at a time.
//!
//! Run: `cargo bench --bench patron_memory` (release build, as the image ships). Memory,
//! not time, is the figure: `--profile dev` gives the same picture (Argon2 is optimised
//! in every profile) without a release build of the workspace.

use std::sync::Arc;

use kitsuki_patron::domain::patron::RegistrationForm;
use kitsuki_patron::staff::{Role, StaffIdentity};
use kitsuki_patron::{PatronAccounts, PatronConfig};
use kitsuki_platform::clock::SystemClock;
use kitsuki_platform::{db, testing};
use kitsuki_proto::Branch;

const PATRONS: usize = 30;
const LOGINS: usize = 1_000;
const AT_ONCE: usize = 40;

/// A field of /proc/self/status in MiB (`VmRSS`, `VmHWM`).
fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

fn print_memory(when: &str) {
    println!(
        "{when:<48} RSS {:>7.1} MiB   peak {:>7.1} MiB",
        status_mib("VmRSS:"),
        status_mib("VmHWM:")
    );
}

#[tokio::main]
async fn main() {
    println!(
        "patron-account memory ({} hashes at once on this machine)",
        kitsuki_patron::passwords::concurrent_hashes()
    );
    let db = db::connect(&testing::fresh_sqlite_url()).await.unwrap();
    let accounts = PatronAccounts::open(db, Arc::new(SystemClock), PatronConfig::default())
        .await
        .unwrap();
    print_memory("started");
    let clerk = StaffIdentity {
        username: "bench_clerk".into(),
        branches: vec![Branch::Kitsuki],
        role: Role::Staff,
    };
    accounts
        .staff()
        .create(&clerk, "bench-clerk-password", "bench")
        .await
        .unwrap();
    let staff = accounts
        .staff()
        .login("bench_clerk", "bench-clerk-password", "")
        .await
        .unwrap()
        .token;
    let mut patrons = Vec::new();
    for i in 0..PATRONS {
        let form = RegistrationForm {
            name: format!("測定 {i}"),
            name_reading: "ソクテイ".into(),
            birth_date: "1985-06-15".into(),
            id_document: "health_insurance".into(),
            email: String::new(),
        };
        let card = accounts
            .register_patron(&staff, Branch::Kitsuki, &form)
            .await
            .unwrap();
        let t = accounts
            .enable_web_service(&staff, Branch::Kitsuki, card.as_str())
            .await
            .unwrap();
        patrons.push((card.to_string(), t.temporary_password));
    }
    print_memory(&format!("after setting up {PATRONS} patrons"));

    let started = std::time::Instant::now();
    for i in 0..LOGINS {
        let (card, password) = &patrons[i % PATRONS];
        // Each from its own address: the throttle is not what is measured.
        accounts
            .login(card, password, &format!("10.9.{}.{}", i / 250, i % 250))
            .await
            .unwrap();
    }
    print_memory(&format!(
        "after {LOGINS} logins one by one ({:.1} s)",
        started.elapsed().as_secs_f64()
    ));

    let started = std::time::Instant::now();
    let accounts = Arc::new(accounts);
    for wave in 0..LOGINS / AT_ONCE {
        let mut set = tokio::task::JoinSet::new();
        for j in 0..AT_ONCE {
            let (card, password) = patrons[(wave * AT_ONCE + j) % PATRONS].clone();
            let accounts = accounts.clone();
            set.spawn(async move {
                accounts
                    .login(&card, &password, &format!("10.8.{wave}.{j}"))
                    .await
                    .map(|_| ())
            });
        }
        while let Some(done) = set.join_next().await {
            done.unwrap().unwrap();
        }
    }
    print_memory(&format!(
        "after {LOGINS} more, {AT_ONCE} at once ({:.1} s)",
        started.elapsed().as_secs_f64()
    ));
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    print_memory("2 s later");
}
