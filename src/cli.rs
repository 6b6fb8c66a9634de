//! Command line: `run` is the operator, `crd` prints the CRD, `render`
//! previews the objects of a pair, `switchover`, `reseed` and `check-divergence`
//! make requests of a running pair and `status` shows it; as `kubectl-myaa`,
//! the same pair commands are a kubectl plugin.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::admission;
use crate::render;

/// mysql-aa-operator: master-master (active-active) MySQL and MariaDB pairs
/// on Kubernetes.
#[derive(Parser, Debug)]
#[command(name = "mysql-aa-operator", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the operator: reconcile every MySQLActiveActive of the cluster
    /// (kubeconfig from KUBECONFIG, ~/.kube/config or the in-cluster
    /// service account).
    Run(crate::controller::Settings),
    /// Run the self-fencing agent beside a server (a container of each
    /// server pod of a SingleWriter pair; see the README, "Partitions").
    Agent(crate::agent::Settings),
    /// Print the MySQLActiveActive CustomResourceDefinition as YAML
    /// (the committed copy is crds/mysqlactiveactives.mysql-aa.io.yaml).
    Crd,
    /// Print the Kubernetes objects the operator would create for a pair,
    /// as multi-document YAML (like `helm template`). The input is validated
    /// as the API server would (schema, defaults, CEL rules). Generated
    /// Secrets are shown without data: the operator generates passwords when
    /// it creates them, so a preview neither leaks nor churns them.
    Render {
        /// File with one MySQLActiveActive (YAML or JSON); `-` for stdin.
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// The agents' image, as the operator is run with (the chart sets
        /// it): a SingleWriter pair then shows the agent's container and
        /// its ServiceAccount, Role and RoleBinding.
        #[arg(long, env = "MYSQL_AA_AGENT_IMAGE")]
        agent_image: Option<String>,
        /// The operator's namespace, as the operator runs in it: a pair's
        /// NetworkPolicy lets the operator in from there (from any
        /// namespace when not given).
        #[arg(long)]
        operator_namespace: Option<String>,
    },
    /// Fill an empty data directory with a copy of the writer's (MariaDB;
    /// run by the `bootstrap` init container of a pod whose volume is new
    /// on a pair that has data): asks the peer's agent for a streamed
    /// `mariadb-backup`, unpacks and prepares it into `--target`, and prints
    /// the GTID position to replicate from (empty when there is none). The
    /// admin password comes only from `MYSQLAA_ADMIN_PASSWORD`.
    SeedReceive(crate::reseed::receive::Settings),
    /// Copy this program into DIR (an init container of a MariaDB pod: the
    /// agent and `seed-receive` then run in the server's image, beside
    /// `mariadb-backup`).
    InstallSelf {
        /// The directory (created if missing).
        dir: PathBuf,
    },
    /// Requests of a running pair (also `kubectl myaa ...`).
    #[command(flatten)]
    Pair(PairCommand),
}

/// The commands of a running pair, shared by `mysql-aa-operator` and the
/// `kubectl myaa` plugin.
#[derive(Subcommand, Debug)]
pub enum PairCommand {
    /// Print both nodes side by side (role, read-only, receiver and applier
    /// threads, lag, last errors, executed and errant GTIDs, semi-sync),
    /// then the pair's conditions, durability and last role changes, from
    /// the pair's status.
    Status {
        /// Name of the MySQLActiveActive.
        name: String,
        /// Its namespace; the kubeconfig's current namespace when unset.
        #[arg(short = 'n', long)]
        namespace: Option<String>,
    },
    /// Move the writer role to the other pod (or `--to POD`): writes
    /// `spec.switchover` with a new requestId and waits for the outcome in
    /// `status.lastSwitchover`. Exits non-zero unless it succeeded.
    Switchover {
        /// The pair and how long to wait.
        #[command(flatten)]
        target: crate::request::Target,
        /// Pod that should take writes; default: the one that does not now.
        #[arg(long)]
        to: Option<String>,
    },
    /// Re-seed a node from the writer: writes `spec.reseed` with a new
    /// requestId and waits until `status.seed` answers it. Exits non-zero
    /// unless the node replicates again on the writer's data.
    Reseed {
        /// The pair and how long to wait.
        #[command(flatten)]
        target: crate::request::Target,
        /// Pod to re-seed (never the writer).
        #[arg(long)]
        node: String,
    },
    /// Compare both nodes' tables now: writes
    /// `spec.divergenceCheck.requestId` and prints `status.divergence`.
    /// Exits non-zero unless the nodes were found consistent.
    CheckDivergence {
        /// The pair and how long to wait.
        #[command(flatten)]
        target: crate::request::Target,
    },
}

/// `kubectl myaa`: the pair commands as a kubectl plugin (the binary
/// installed, or linked, as `kubectl-myaa` on PATH; README, "kubectl myaa").
#[derive(Parser, Debug)]
#[command(name = "kubectl-myaa", bin_name = "kubectl myaa", version)]
pub struct Plugin {
    /// What to do.
    #[command(subcommand)]
    pub command: PairCommand,
}

/// Whether the program runs as the kubectl plugin (named `kubectl-myaa`).
pub fn is_plugin(argv0: &std::ffi::OsStr) -> bool {
    std::path::Path::new(argv0)
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("kubectl-myaa"))
}

/// Runs a pair command, writing results to `out`.
pub fn run_pair(command: PairCommand, out: &mut dyn Write) -> Result<()> {
    let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
    match command {
        PairCommand::Status { name, namespace } => {
            rt.block_on(crate::request::status(&name, namespace.as_deref(), out))
        }
        PairCommand::Switchover { target, to } => {
            rt.block_on(crate::request::switchover(&target, to, out))
        }
        PairCommand::Reseed { target, node } => {
            rt.block_on(crate::request::reseed(&target, &node, out))
        }
        PairCommand::CheckDivergence { target } => {
            rt.block_on(crate::request::check_divergence(&target, out))
        }
    }
}

/// Runs `cli`, writing results to `out`.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<()> {
    match cli.command {
        Command::Run(settings) => tokio::runtime::Runtime::new()
            .context("starting the runtime")?
            .block_on(crate::controller::run(settings)),
        Command::Agent(settings) => tokio::runtime::Runtime::new()
            .context("starting the runtime")?
            .block_on(crate::agent::run(settings)),
        Command::Crd => write_crd(out),
        Command::SeedReceive(settings) => tokio::runtime::Runtime::new()
            .context("starting the runtime")?
            .block_on(crate::reseed::receive::run(settings, out)),
        Command::InstallSelf { dir } => crate::reseed::receive::install_self(&dir, out),
        Command::Pair(command) => run_pair(command, out),
        Command::Render {
            file,
            agent_image,
            operator_namespace,
        } => {
            let text = read_input(&file)?;
            write_render(
                &text,
                &render::RenderOptions {
                    image: agent_image,
                    operator_namespace,
                },
                out,
            )
        }
    }
}

/// Writes the CRD YAML.
pub fn write_crd(out: &mut dyn Write) -> Result<()> {
    out.write_all(crd_yaml()?.as_bytes())?;
    Ok(())
}

/// The CRD as YAML, exactly as committed in `crds/`.
pub fn crd_yaml() -> Result<String> {
    let yaml = serde_saphyr::to_string(&crate::api::crd()).context("serializing the CRD")?;
    Ok(format!(
        "# Generated by `mysql-aa-operator crd`; do not edit (a test checks it).\n{yaml}"
    ))
}

fn read_input(file: &PathBuf) -> Result<String> {
    let mut text = String::new();
    if file.as_os_str() == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading stdin")?;
    } else {
        text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    }
    Ok(text)
}

/// Validates the pair in `text` and writes its objects as YAML documents.
pub fn write_render(text: &str, agent: &render::RenderOptions, out: &mut dyn Write) -> Result<()> {
    let value: serde_json::Value =
        serde_saphyr::from_str(text).context("the input is not a YAML or JSON document")?;
    if !value.is_object() {
        anyhow::bail!("the input is empty or not an object: expected one MySQLActiveActive");
    }
    let pair = admission::admit(&value, None)?;
    let rendered = render::render_with(&pair, agent)?;
    let mut docs = Vec::new();
    for secret in &rendered.secrets {
        docs.push(to_yaml(secret)?);
    }
    if let Some(a) = &rendered.agent {
        docs.push(to_yaml(&a.service_account)?);
        docs.push(to_yaml(&a.role)?);
        docs.push(to_yaml(&a.role_binding)?);
    }
    if let Some(lease) = &rendered.lease {
        docs.push(to_yaml(lease)?);
    }
    docs.push(to_yaml(&rendered.config_map)?);
    for service in &rendered.services {
        docs.push(to_yaml(service)?);
    }
    docs.push(to_yaml(&rendered.pdb)?);
    if let Some(np) = &rendered.network_policy {
        docs.push(to_yaml(np)?);
    }
    docs.push(to_yaml(&rendered.statefulset)?);
    writeln!(
        out,
        "# Objects mysql-aa-operator creates for {}. Generated Secrets are shown\n# without data: the operator fills in passwords when it creates them.",
        kube::ResourceExt::name_any(&pair)
    )?;
    for doc in docs {
        writeln!(out, "---\n{}", doc.trim_end())?;
    }
    Ok(())
}

fn to_yaml<K>(obj: &K) -> Result<String>
where
    K: Serialize + kube::Resource<DynamicType = ()>,
{
    // Serialize with apiVersion and kind, which k8s-openapi's Serialize adds.
    serde_saphyr::to_string(obj).context("serializing an object")
}
