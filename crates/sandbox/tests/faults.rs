//! The box's faults, checked from both sides of each: two pods listening
//! on a port; a partition cuts them from each other but not from the host,
//! isolation cuts one from everything, healing restores it; a paused pod's
//! processes are stopped and resume; a killed container is restarted by
//! its kubelet.

mod common;

use common::{root, wait};

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use sandbox::{Cluster, Options};
use serde_json::json;

const PORT: u16 = 8080;

/// A pod that listens on PORT (Python's HTTP server, from the host).
fn listener(name: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "automountServiceAccountToken": false,
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "main", "image": "mariadb:11.4",
                "command": ["python3", "-m", "http.server", PORT.to_string(), "--bind", "0.0.0.0"],
                "readinessProbe": {"tcpSocket": {"port": PORT}, "periodSeconds": 1},
            }],
        },
    }))
    .unwrap()
}

/// Whether the host reaches `ip`.
fn host_reaches(ip: &str) -> bool {
    let addr: SocketAddr = format!("{ip}:{PORT}").parse().unwrap();
    TcpStream::connect_timeout(&addr, Duration::from_millis(700)).is_ok()
}

/// Whether the pod whose network namespace is `netns` reaches `ip`.
fn pod_reaches(netns: &str, ip: &str) -> bool {
    Command::new("ip")
        .args(["netns", "exec", netns, "python3", "-c"])
        .arg(format!(
            "import socket; socket.create_connection(('{ip}', {PORT}), 0.7)"
        ))
        .output()
        .unwrap()
        .status
        .success()
}

fn state(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rfind(')')
        .and_then(|i| stat[i + 2..].chars().next())
        .unwrap_or('?')
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_isolation_pauses_and_kills_act_and_heal() {
    let cluster = Cluster::start(root("faults"), Options::default())
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(cluster.client(), "default");
    for name in ["a", "b"] {
        pods.create(&PostParams::default(), &listener(name))
            .await
            .unwrap();
    }
    let mut ips = Vec::new();
    for name in ["a", "b"] {
        wait(
            &format!("{name} Ready"),
            Duration::from_secs(60),
            || async {
                pods.get(name).await.unwrap().status.is_some_and(|s| {
                    s.conditions
                        .unwrap_or_default()
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
                })
            },
        )
        .await;
        ips.push(cluster.pod_ip("default", name).await.unwrap());
    }
    let (a, b) = (ips[0].as_str(), ips[1].as_str());
    let faults = cluster.faults();
    let (na, nb) = (faults.pod_netns(a), faults.pod_netns(b));
    let view = || {
        [
            host_reaches(a),
            host_reaches(b),
            pod_reaches(&na, b),
            pod_reaches(&nb, a),
        ]
    };
    assert_eq!(
        view(),
        [true; 4],
        "host→a, host→b, a→b, b→a before any fault"
    );

    faults.partition(a, b).unwrap();
    assert_eq!(
        view(),
        [true, true, false, false],
        "a partition cuts a↔b only"
    );
    faults.heal(a).unwrap();
    assert_eq!(view(), [true; 4], "healed");

    faults.isolate(a).unwrap();
    assert_eq!(
        view(),
        [false, true, false, false],
        "isolation cuts a from everything"
    );
    faults.partition(a, b).unwrap();
    faults.heal_all().unwrap();
    assert_eq!(view(), [true; 4], "all healed");

    let paused = faults.signal(a, "STOP", &["python3"]).unwrap();
    assert_eq!(paused.len(), 1, "{paused:?}");
    assert_eq!(state(paused[0]), 'T', "stopped");
    faults.signal(a, "CONT", &["python3"]).unwrap();
    assert_ne!(state(paused[0]), 'T', "resumed");
    assert!(host_reaches(a));

    let killed = faults.signal(a, "KILL", &["python3"]).unwrap();
    assert_eq!(killed, paused);
    wait(
        "the kubelet restarts the killed container",
        Duration::from_secs(60),
        || async {
            cluster
                .container_pid("default", "a", "main")
                .await
                .is_some_and(|p| p != killed[0])
                && host_reaches(a)
        },
    )
    .await;
    cluster.shutdown().await;
}
