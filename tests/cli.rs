//! The binary's `crd` and `render` commands, as a user runs them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mysql-aa-operator"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

#[test]
fn crd_prints_the_committed_file() {
    let out = run(&["crd"], None);
    assert!(out.status.success());
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crds/mysqlactiveactives.mysql-aa.io.yaml"
    ))
    .unwrap();
    assert_eq!(text(&out.stdout), committed);
}

#[test]
fn render_prints_every_object_of_each_example() {
    let base = [
        "ConfigMap",
        "PodDisruptionBudget",
        "Secret",
        "Secret",
        "Service",
        "Service",
        "Service",
        "StatefulSet",
    ];
    let agent_kinds = ["Lease", "Role", "RoleBinding", "ServiceAccount"];
    // (file, agent image given, SingleWriter, NetworkPolicy)
    for (file, agent, single, policy) in [
        ("examples/pair.yaml", false, true, false),
        ("examples/pair.yaml", true, true, false),
        ("examples/active-active.yaml", true, false, false),
        ("examples/mariadb.yaml", false, true, false),
        ("examples/production.yaml", true, true, true),
    ] {
        let mut args = vec!["render", "-f", file];
        if agent {
            args.extend(["--agent-image", "ghcr.io/mysql-aa/mysql-aa-operator:0.1.0"]);
        }
        let out = run(&args, None);
        assert!(out.status.success(), "{file}: {}", text(&out.stderr));
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text(&out.stdout)).unwrap();
        let mut found: Vec<String> = docs
            .iter()
            .map(|d| d["kind"].as_str().unwrap().to_string())
            .collect();
        found.sort();
        let mut want: Vec<String> = base.iter().map(|k| k.to_string()).collect();
        match (single, agent) {
            (true, true) => want.extend(agent_kinds.iter().map(|k| k.to_string())),
            (true, false) => want.push("Lease".into()),
            (false, _) => {}
        }
        if policy {
            want.push("NetworkPolicy".into());
        }
        want.sort();
        assert_eq!(found, want, "{file} agent={agent}");
        // The agent's container runs beside the server, only when asked.
        let sts = docs.iter().find(|d| d["kind"] == "StatefulSet").unwrap();
        let containers = sts["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(
            containers.len(),
            if single && agent { 2 } else { 1 },
            "{file}"
        );
        // Generated Secrets carry no password in a preview.
        for secret in docs.iter().filter(|d| d["kind"] == "Secret") {
            assert!(secret.get("data").is_none() && secret.get("stringData").is_none());
        }
    }
}

#[test]
fn render_reads_stdin() {
    let input = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/mariadb.yaml"
    ))
    .unwrap();
    let out = run(&["render", "-f", "-"], Some(&input));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("gtid_domain_id = 3001"));
}

#[test]
fn bad_input_fails_with_a_message_naming_the_problem() {
    let cases = [
        ("not: [valid: yaml", "not a YAML or JSON document"),
        (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {}\n",
            "expected apiVersion mysql-aa.io/v1alpha1 and kind MySQLActiveActive",
        ),
        (
            "apiVersion: mysql-aa.io/v1alpha1\nkind: MySQLActiveActive\nmetadata: {name: x}\nspec: {serverIdBase: 0}\n",
            "spec.serverIdBase",
        ),
        (
            "apiVersion: mysql-aa.io/v1alpha1\nkind: MySQLActiveActive\nmetadata: {name: x}\nspec: {mysqldConfig: {log-bin: 'off'}}\n",
            "operator-owned: log-bin",
        ),
        ("", "the input is empty or not an object"),
    ];
    for (input, want) in cases {
        let out = run(&["render", "-f", "-"], Some(input));
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{input:?}: {err}");
        assert!(
            err.contains(want),
            "{input:?}: expected {want:?} in {err:?}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert!(out.stdout.is_empty(), "nothing is printed for bad input");
    }
    let out = run(&["render", "-f", "/nonexistent/pair.yaml"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("reading /nonexistent/pair.yaml"));
}
