//! The event stream on a real three-node NATS JetStream cluster, as the prod overlay runs
//! it (k8s/overlays/prod: `KITSUKI_STREAM_REPLICAS=3`): the stream is kept by all three
//! servers, and when one of them goes away events are still published and delivered,
//! none lost. The cluster is three `nats-server` processes started here on free loopback
//! ports with their own storage folders (scripts/test installs nats-server when missing).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kitsuki_platform::bus::{ConsumerSpec, Event, NatsBus, SharedBus};
use kitsuki_platform::testing::{self, free_port};

/// One `nats-server` of the test cluster, killed when dropped.
struct Server {
    child: Child,
    client_port: u16,
    name: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nats_server_binary() -> PathBuf {
    [
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
        "/usr/local/bin/nats-server",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect("nats-server installed (scripts/test installs it)")
}

/// Starts three servers of one JetStream cluster.
fn start_cluster(dir: &std::path::Path) -> Vec<Server> {
    let cluster_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let routes = cluster_ports
        .iter()
        .map(|p| format!("nats://127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let tag = testing::unique_id();
    (0..3)
        .map(|i| {
            let client_port = free_port();
            let store = dir.join(format!("n{i}"));
            let name = format!("kitsuki-test-{tag}-{i}");
            std::fs::create_dir_all(&store).unwrap();
            let child = Command::new(nats_server_binary())
                .args(["-a", "127.0.0.1", "-p", &client_port.to_string(), "-js"])
                .arg("-sd")
                .arg(&store)
                .args(["-n", &name])
                .args(["--cluster_name", &format!("kitsuki-test-{tag}")])
                .args([
                    "--cluster",
                    &format!("nats://127.0.0.1:{}", cluster_ports[i]),
                ])
                .args(["--routes", &routes])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start nats-server");
            Server {
                child,
                client_port,
                name,
            }
        })
        .collect()
}

/// The stream's configured replicas, its followers, and its leader's server name.
async fn stream_replicas(url: &str, stream: &str) -> (usize, usize, String) {
    let client = async_nats::connect(url).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    let mut s = js.get_stream(stream).await.expect("the stream");
    let info = s.info().await.expect("stream info");
    let cluster = info.cluster.clone().expect("clustered stream info");
    (
        info.config.num_replicas,
        cluster.replicas.len(),
        cluster.leader.unwrap_or_default(),
    )
}

#[tokio::test]
async fn the_stream_is_kept_by_three_servers_and_survives_losing_one() {
    let dir = std::env::temp_dir().join(format!("kitsuki-nats-cluster-{}", testing::unique_id()));
    let mut servers = start_cluster(&dir);
    // One server's address: the client learns the others from the cluster (as behind the
    // `nats` Service of k8s, which answers from any node).
    let first = format!("nats://127.0.0.1:{}", servers[0].client_port);
    let prefix = testing::unique_prefix();
    // The cluster elects its meta leader in a few seconds: connect waits for it.
    let bus = NatsBus::connect_replicated(&first, &prefix, 3, Duration::from_secs(60))
        .await
        .expect("a replicated stream on the cluster");
    let stream = bus.stream_name().to_string();
    let (configured, followers, leader) = stream_replicas(&first, &stream).await;
    assert_eq!(
        (configured, followers),
        (3, 2),
        "configured for 3: a leader and 2 followers"
    );
    let bus: SharedBus = std::sync::Arc::new(bus);
    let mut sub = bus
        .subscribe(&ConsumerSpec::new("cluster-test", "catalog.>"))
        .await
        .expect("subscribe");
    let before = Event::new("catalog.item.created", b"before".to_vec());
    bus.publish(&before).await.expect("publish before");

    // The server that leads the stream goes away: the other two elect a new leader.
    let at = servers
        .iter()
        .position(|s| s.name == leader)
        .expect("the leader is one of the three");
    drop(servers.remove(at));
    let after = Event::new("catalog.item.created", b"after".to_vec());
    let published = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match bus.publish(&after).await {
                Ok(_) => break,
                // Reconnecting to another server, or the stream electing a new leader.
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    })
    .await;
    assert!(
        published.is_ok(),
        "publishing goes on with two of three servers"
    );

    let mut seen = Vec::new();
    while seen.len() < 2 {
        let d = tokio::time::timeout(Duration::from_secs(60), sub.next())
            .await
            .expect("a delivery before the deadline")
            .expect("the subscription goes on");
        let Ok(d) = d else { continue };
        let id = d.event.id.clone();
        d.ack().await.expect("ack");
        if !seen.contains(&id) {
            seen.push(id);
        }
    }
    assert_eq!(
        seen,
        vec![before.id, after.id],
        "both events, in order, once each"
    );
    drop(servers);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_replica_count_jetstream_cannot_take_is_refused() {
    for replicas in [0, 6] {
        let Err(err) = NatsBus::connect_replicated(
            &testing::nats_url(),
            &testing::unique_prefix(),
            replicas,
            Duration::from_secs(5),
        )
        .await
        else {
            panic!("{replicas} replicas accepted");
        };
        assert!(err.to_string().contains("replicas"), "{err}");
    }
}
