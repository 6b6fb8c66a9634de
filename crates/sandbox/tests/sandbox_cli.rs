//! `sandbox up` / `sandbox down` as a newcomer runs them, on the real
//! control plane: the pair comes up, kubectl (v1.37.2, built by
//! scripts/install-kubernetes) sees nodes, pods, Events and logs, and after
//! `sandbox down`, or a killed sandbox followed by a new `sandbox up`,
//! nothing of the box is left: no process, network namespace, veth, bridge
//! or mount.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .canonicalize()
        .unwrap()
}

/// Starts `sandbox up` and returns once it printed that it runs, with what
/// it printed.
fn up(state: &Path) -> (Child, String) {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_sandbox"));
    let mut up = Command::new(&exe)
        .args(["up", "examples/pair.yaml"])
        .current_dir(root())
        .env("SANDBOX_DIR", state)
        .env("SANDBOX_QUIET", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = up.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(240)) {
            Ok(line) => {
                let done = line.contains("stop with Ctrl-C");
                seen.push(line);
                if done {
                    break;
                }
            }
            Err(_) => panic!("sandbox up did not come up: {seen:#?}"),
        }
    }
    (up, seen.join("\n"))
}

fn kubectl(state: &Path, args: &[&str]) -> String {
    let out = Command::new(sandbox::controlplane::binary("kubectl").unwrap())
        .arg("--kubeconfig")
        .arg(state.join("kubeconfig"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What of a box is still on the machine: processes whose command line or
/// environment names its folder, network namespaces, links named after
/// its bridge, mounts under its folder.
fn leftovers(state: &Path, bridge: &str) -> Vec<String> {
    let mut out = Vec::new();
    let needle = state.display().to_string();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().to_string();
        if !pid.chars().all(|c| c.is_ascii_digit()) || pid == std::process::id().to_string() {
            continue;
        }
        for file in ["cmdline", "environ"] {
            let data = std::fs::read(entry.path().join(file)).unwrap_or_default();
            if String::from_utf8_lossy(&data).contains(&needle) {
                let cmd = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                out.push(format!(
                    "process {pid}: {}",
                    String::from_utf8_lossy(&cmd).replace('\0', " ")
                ));
                break;
            }
        }
    }
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    for ns in String::from_utf8_lossy(&netns.stdout).lines() {
        if ns.starts_with(bridge) {
            out.push(format!("network namespace {ns}"));
        }
    }
    let links = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .unwrap();
    for l in String::from_utf8_lossy(&links.stdout).lines() {
        if l.contains(bridge) {
            out.push(format!("link {l}"));
        }
    }
    for m in std::fs::read_to_string("/proc/mounts").unwrap().lines() {
        if m.contains(&needle) {
            out.push(format!("mount {m}"));
        }
    }
    out
}

fn bridge_of(state: &Path) -> String {
    let text = std::fs::read_to_string(state.join("box/box.state")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("bridge "))
        .unwrap()
        .to_string()
}

#[test]
fn up_shows_a_running_pair_and_down_removes_everything() {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_sandbox"));
    let operator = exe.parent().unwrap().join("mysql-aa-operator");
    assert!(
        operator.exists(),
        "build the operator first (cargo build): {}",
        operator.display()
    );
    let state = root().join(format!(".cache/sandbox-test-{}", std::process::id()));
    let (mut first, text) = up(&state);
    assert!(text.contains("pair shop/orders is Ready"), "{text}");
    assert!(text.contains("the writer Service (orders-writer"), "{text}");
    assert!(
        text.contains("-u mysqlaa_admin -p"),
        "connection commands are printed: {text}"
    );
    // kubectl works with the written kubeconfig, against the real server.
    assert!(kubectl(&state, &["version"]).contains("Server Version: v1.37.2"));
    let nodes = kubectl(&state, &["get", "nodes"]);
    assert_eq!(nodes.matches(" Ready ").count(), 3, "{nodes}");
    assert_eq!(
        kubectl(&state, &["get", "pods", "-n", "shop", "-o", "name"]).trim(),
        "pod/orders-0\npod/orders-1"
    );
    let pods = kubectl(&state, &["get", "pods", "-n", "shop"]);
    assert!(
        pods.contains("READY") && pods.contains("STATUS") && pods.contains("RESTARTS"),
        "{pods}"
    );
    // Each pod: the server and its agent.
    assert_eq!(pods.matches("2/2     Running").count(), 2, "{pods}");
    let events = kubectl(&state, &["get", "events", "-n", "shop"]);
    assert!(events.contains("ObjectsApplied"), "{events}");
    let describe = kubectl(&state, &["describe", "myaa", "orders", "-n", "shop"]);
    assert!(
        describe.contains("Events:") && describe.contains("ObjectsApplied"),
        "{describe}"
    );
    let logs = kubectl(&state, &["logs", "orders-0", "-n", "shop"]);
    assert!(logs.contains("ready for connections"), "{logs}");
    let managers = kubectl(
        &state,
        &[
            "get",
            "statefulset",
            "orders",
            "-n",
            "shop",
            "--show-managed-fields",
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
        ],
    );
    assert!(managers.contains("mysql-aa-operator"), "{managers}");
    let password = kubectl(
        &state,
        &[
            "get",
            "secret",
            "orders-admin",
            "-n",
            "shop",
            "-o",
            "jsonpath={.data.password}",
        ],
    );
    assert!(password.len() >= 40, "a generated password is stored");

    // A killed sandbox leaves its servers behind; the next `sandbox up`
    // removes them first.
    let first_bridge = bridge_of(&state);
    first.kill().unwrap();
    first.wait().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !leftovers(&state, &first_bridge).is_empty(),
        "a killed sandbox leaves something behind (else this check proves nothing)"
    );
    let (mut second, text) = up(&state);
    assert!(text.contains("pair shop/orders is Ready"), "{text}");
    let second_bridge = bridge_of(&state);
    let left: Vec<String> = leftovers(&state, &first_bridge)
        .into_iter()
        .filter(|l| !l.starts_with("process") && !l.starts_with("mount"))
        .collect();
    assert!(
        left.is_empty(),
        "the killed box's network is gone: {left:#?}"
    );

    // `sandbox fault` injects a fault into the running box, and the
    // operator sees it: the isolated replica is reported unreachable, and
    // after healing the pair is Ready again.
    let fault = |args: &[&str]| {
        let out = Command::new(&exe)
            .arg("fault")
            .args(args)
            .current_dir(root())
            .env("SANDBOX_DIR", &state)
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok, out) = fault(&["isolate", "orders-1"]);
    assert!(ok && out.contains("isolated orders-1"), "{out}");
    let reachable = |node: usize| {
        kubectl(
            &state,
            &[
                "get",
                "myaa",
                "orders",
                "-n",
                "shop",
                "-o",
                &format!("jsonpath={{.status.nodes[{node}].reachable}}"),
            ],
        )
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while reachable(1).trim() != "false" {
        assert!(
            std::time::Instant::now() < deadline,
            "the isolated replica is reported unreachable"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let (ok, out) = fault(&["heal", "all"]);
    assert!(ok, "{out}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while reachable(1).trim() != "true" {
        assert!(
            std::time::Instant::now() < deadline,
            "healed, the replica is reachable again"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // A node, through the running `sandbox up` (which owns the kubelet).
    let (ok, out) = fault(&["node-down", "orders-1"]);
    assert!(ok && out.contains("is down"), "{out}");
    let node = out
        .split_whitespace()
        .skip_while(|w| *w != "node")
        .nth(1)
        .unwrap()
        .to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !kubectl(&state, &["get", "node", &node]).contains("NotReady") {
        assert!(
            std::time::Instant::now() < deadline,
            "{node} turns NotReady"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let (ok, out) = fault(&["node-up", &node]);
    assert!(ok && out.contains("is up again"), "{out}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while kubectl(&state, &["get", "node", &node]).contains("NotReady") {
        assert!(std::time::Instant::now() < deadline, "{node} Ready again");
        std::thread::sleep(Duration::from_millis(500));
    }
    let (ok, out) = fault(&["unplug", "orders-1"]);
    assert!(!ok && out.contains("unknown fault"), "{out}");

    // down stops it, and everything it made is gone.
    let down = Command::new(&exe)
        .arg("down")
        .current_dir(root())
        .env("SANDBOX_DIR", &state)
        .status()
        .unwrap();
    assert!(down.success());
    let status = second.wait().unwrap();
    assert!(status.success());
    assert!(!state.exists(), "{} was removed", state.display());
    let mut left = leftovers(&state, &first_bridge);
    left.extend(leftovers(&state, &second_bridge));
    assert!(left.is_empty(), "left behind: {left:#?}");
}
