//! `kubectl myaa` (issue 15) as a user gets it: packaged by
//! scripts/package-plugin, installed by the real krew from its manifest and
//! archive, found on PATH by the real kubectl, and run against a pair in the
//! cluster-in-a-box: `status` shows both nodes side by side, `switchover`,
//! `check-divergence` and `reseed` make their requests and print the
//! operator's answers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Runs `program args` with `path` first on PATH and the box's kubeconfig:
/// (success, stdout and stderr).
fn run(program: &Path, args: &[&str], path: &Path, kubeconfig: &Path) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .env(
            "PATH",
            format!("{}:{}", path.display(), std::env::var("PATH").unwrap()),
        )
        .env("KUBECONFIG", kubeconfig)
        .output()
        .unwrap();
    (out.status.success(), output_text(&out))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_myaa_installed_by_krew_runs_the_pair_commands() {
    let b = TestBox::start("plugin").await;
    let (name, _) = b.apply_example("pair.yaml", "MariaDB").await;
    // Package and install, as the README says.
    let dist = b.cluster.root().join("dist");
    let krew_root = b.cluster.root().join("krew");
    let packaged = Command::new(format!("{ROOT}/scripts/package-plugin"))
        .args([
            env!("CARGO_BIN_EXE_mysql-aa-operator"),
            dist.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(packaged.status.success(), "{packaged:?}");
    let archive = String::from_utf8_lossy(&packaged.stdout)
        .lines()
        .find(|l| l.ends_with(".tar.gz"))
        .unwrap()
        .to_string();
    let krew = Command::new(format!("{ROOT}/.cache/tools/krew/krew"))
        .args([
            "install",
            &format!("--manifest={}", dist.join("myaa.yaml").display()),
            &format!("--archive={archive}"),
        ])
        .env("KREW_ROOT", &krew_root)
        .output()
        .expect("krew: run scripts/install-test-tools");
    assert!(
        krew.status.success(),
        "krew install: {}",
        String::from_utf8_lossy(&krew.stderr)
    );
    let kubectl = sandbox::controlplane::binary("kubectl").unwrap();
    let bin = krew_root.join("bin");
    let kc = b.admin_kubeconfig.clone();
    let (ok, plugins) = run(&kubectl, &["plugin", "list"], &bin, &kc);
    assert!(
        plugins.contains(&format!("{}/kubectl-myaa", bin.display())),
        "{ok} {plugins}"
    );
    let myaa = |args: &[&str]| {
        let mut all = vec!["myaa"];
        all.extend_from_slice(args);
        run(&kubectl, &all, &bin, &kc)
    };
    let p = b.wait_ready(&name, Duration::from_secs(240)).await;
    let writer = p.status.unwrap().writer.unwrap();

    let (ok, text) = myaa(&["status", &name, "-n", "shop"]);
    assert!(ok, "{text}");
    eprintln!("kubectl myaa status:\n{text}");
    assert!(
        text.starts_with(&format!("shop/{name}: Ready=True")),
        "{text}"
    );
    let row = |text: &str, label: &str| -> Vec<String> {
        let line = text
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no {label} in {text}"));
        line[label.len()..]
            .split("  ")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let roles = |text: &str| -> Vec<String> { row(text, "role") };
    let before = roles(&text);
    assert_eq!(before.len(), 2);
    assert!(before.contains(&"Writer".to_string()) && before.contains(&"Replica".to_string()));
    assert_eq!(row(&text, "receiver (IO)"), ["Yes", "Yes"]);
    assert_eq!(row(&text, "applier (SQL)"), ["Yes", "Yes"]);

    let (ok, text) = myaa(&["switchover", &name, "-n", "shop"]);
    assert!(ok, "switchover: {text}");
    assert!(text.contains("Succeeded"), "{text}");
    b.wait_ready(&name, Duration::from_secs(60)).await;
    let (_, text) = myaa(&["status", &name, "-n", "shop"]);
    let after = roles(&text);
    assert_eq!(after, [before[1].clone(), before[0].clone()], "{text}");
    assert!(text.contains("last switchover:"), "{text}");

    let (ok, text) = myaa(&["check-divergence", &name, "-n", "shop"]);
    assert!(
        ok && text.contains("Consistent"),
        "check-divergence: {text}"
    );

    // The old writer is the replica now.
    let (ok, text) = myaa(&["reseed", &name, "-n", "shop", "--node", &writer]);
    assert!(ok && text.contains("Finished"), "reseed: {text}");
    eprintln!("kubectl myaa reseed: {text}");
    b.shutdown().await;
}
