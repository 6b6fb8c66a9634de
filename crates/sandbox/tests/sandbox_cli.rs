//! `sandbox up` / `sandbox down` as a newcomer runs them.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .canonicalize()
        .unwrap()
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
    let mut up = Command::new(&exe)
        .args(["up", "examples/pair.yaml"])
        .current_dir(root())
        .env("SANDBOX_DIR", &state)
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
    let text = seen.join("\n");
    assert!(text.contains("pair shop/orders is Ready"), "{text}");
    assert!(
        text.contains("the writer Service (orders-writer):"),
        "{text}"
    );
    assert!(
        text.contains("-u mysqlaa_admin -p"),
        "connection commands are printed: {text}"
    );
    // kubectl works with the written kubeconfig.
    let kubeconfig = state.join("kubeconfig");
    let out = Command::new("kubectl")
        .args([
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "get",
            "pods",
            "-n",
            "shop",
            "-o",
            "name",
        ])
        .output()
        .expect("kubectl on PATH");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "pod/orders-0\npod/orders-1"
    );
    let out = Command::new("kubectl")
        .args([
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "get",
            "secret",
            "orders-admin",
            "-n",
            "shop",
            "-o",
            "jsonpath={.data.password}",
        ])
        .output()
        .unwrap();
    assert!(
        out.stdout.len() >= 40,
        "a generated password is stored: {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    // down stops it, and everything it made is gone.
    let down = Command::new(&exe)
        .arg("down")
        .current_dir(root())
        .env("SANDBOX_DIR", &state)
        .status()
        .unwrap();
    assert!(down.success());
    let status = up.wait().unwrap();
    assert!(status.success());
    assert!(!state.exists(), "{} was removed", state.display());
}
