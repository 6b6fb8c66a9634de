//! The API stand-in driven by the real `kubectl` (which must be on PATH: a
//! missing kubectl fails these tests).

use std::path::PathBuf;
use std::time::Duration;

use sandbox::apiserver::{ApiServer, Config};

struct Kubectl {
    server: ApiServer,
    kubeconfig: PathBuf,
    _dir: TempDir,
}

struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

impl Kubectl {
    async fn start() -> Self {
        let server = ApiServer::start(Config::default()).await.unwrap();
        let dir = std::env::temp_dir().join(format!(
            "sandbox-kubectl-{}-{}",
            std::process::id(),
            server.addr().port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let kubeconfig = dir.join("kubeconfig");
        server
            .write_kubeconfig(&kubeconfig, "kubectl-user")
            .unwrap();
        Self {
            server,
            kubeconfig,
            _dir: TempDir(dir),
        }
    }

    /// Runs kubectl; returns (success, stdout, stderr).
    async fn run(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let mut cmd = tokio::process::Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .current_dir(root());
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("kubectl must be installed and on PATH");
        if let Some(input) = stdin {
            use tokio::io::AsyncWriteExt;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .await
                .unwrap();
        }
        drop(child.stdin.take());
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("kubectl hung")
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    async fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args, None).await;
        assert!(ok, "kubectl {args:?} failed:\n{out}\n{err}");
        out
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_manages_a_custom_resource() {
    let k = Kubectl::start().await;
    k.ok(&["apply", "-f", "crds/mysqlactiveactives.mysql-aa.io.yaml"])
        .await;
    let (ok, out, err) = k
        .run(
            &["apply", "-f", "-"],
            Some("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n"),
        )
        .await;
    assert!(ok, "{out}{err}");
    let out = k.ok(&["apply", "-f", "examples/pair.yaml"]).await;
    assert!(
        out.contains("mysqlactiveactive.mysql-aa.io/orders created"),
        "{out}"
    );
    // Printer columns, by short name.
    let out = k.ok(&["get", "myaa", "-n", "shop"]).await;
    let header = out.lines().next().unwrap_or_default();
    for col in ["NAME", "READY", "WRITER", "MODE", "LAG", "AGE"] {
        assert!(header.contains(col), "column {col} missing: {out}");
    }
    assert!(
        out.contains("orders") && out.contains("SingleWriter"),
        "{out}"
    );
    // Applying again changes nothing.
    let out = k.ok(&["apply", "-f", "examples/pair.yaml"]).await;
    assert!(out.contains("unchanged"), "{out}");
    let out = k.ok(&["describe", "myaa", "orders", "-n", "shop"]).await;
    assert!(
        out.contains("Name:") && out.contains("orders") && out.contains("Write Mode:"),
        "{out}"
    );
    let out = k
        .ok(&[
            "get",
            "myaa",
            "orders",
            "-n",
            "shop",
            "-o",
            "jsonpath={.spec.serverIdBase}",
        ])
        .await;
    assert_eq!(out, "1000");
    let out = k.ok(&["delete", "myaa", "orders", "-n", "shop"]).await;
    assert!(out.contains("deleted"), "{out}");
    let (ok, _, err) = k.run(&["get", "myaa", "orders", "-n", "shop"], None).await;
    assert!(
        !ok && err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );
    let writes: Vec<_> = k
        .server
        .requests()
        .into_iter()
        .filter(|r| r.caller == "agent:kubectl" && r.is_write())
        .collect();
    assert!(
        !writes.is_empty(),
        "{:?}",
        k.server
            .requests()
            .iter()
            .map(|r| (&r.verb, &r.caller))
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_is_refused_an_invalid_resource_with_the_cel_message() {
    let k = Kubectl::start().await;
    k.ok(&["apply", "-f", "crds/mysqlactiveactives.mysql-aa.io.yaml"])
        .await;
    let bad = "apiVersion: mysql-aa.io/v1alpha1\nkind: MySQLActiveActive\nmetadata:\n  name: bad\nspec:\n  mysqldConfig:\n    gtid_mode: 'OFF'\n";
    let (ok, _, err) = k.run(&["apply", "-f", "-"], Some(bad)).await;
    assert!(!ok);
    assert!(
        err.contains("mysqldConfig must not set options the operator owns: gtid_mode"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_manages_a_config_map() {
    let k = Kubectl::start().await;
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: \"1\"\n";
    let (ok, out, err) = k
        .run(&["apply", "--validate=false", "-f", "-"], Some(cm))
        .await;
    assert!(ok, "{out}{err}");
    let changed = cm.replace("a: \"1\"", "a: \"2\"");
    let (ok, out, err) = k
        .run(&["apply", "--validate=false", "-f", "-"], Some(&changed))
        .await;
    assert!(ok && out.contains("configured"), "{out}{err}");
    let out = k
        .ok(&["get", "configmap", "settings", "-o", "jsonpath={.data.a}"])
        .await;
    assert_eq!(out, "2");
    let out = k.ok(&["get", "cm"]).await;
    assert!(out.contains("settings"), "{out}");
    let out = k.ok(&["delete", "configmap", "settings"]).await;
    assert!(out.contains("deleted"), "{out}");
    let out = k.ok(&["get", "cm", "-o", "name"]).await;
    assert!(!out.contains("settings"), "{out}");
}
