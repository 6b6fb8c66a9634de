//! Settings of `mysql-aa-operator run` (flags and environment).

use std::time::Duration;

/// How the operator and the replicas address the pods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AddressMode {
    /// `<pod>.<headless service>.<namespace>.svc` (needs cluster DNS).
    Dns,
    /// The pod's IP (environments without cluster DNS, such as the sandbox).
    PodIp,
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Settings of `run`.
#[derive(clap::Args, Clone, Debug)]
pub struct Settings {
    /// How the operator and replication channels address the pods: `dns`
    /// (stable names under the headless Service) or `pod-ip` (no cluster DNS).
    #[arg(long, env = "MYSQL_AA_ADDRESS_MODE", value_enum, default_value = "dns")]
    pub address_mode: AddressMode,
    /// Seconds between observations of each pair (MySQL changes are
    /// invisible to Kubernetes watches).
    #[arg(long, env = "MYSQL_AA_OBSERVE_INTERVAL_SECONDS", default_value_t = 5)]
    pub observe_interval_seconds: u64,
    /// Image of the self-fencing agent run beside each server of a
    /// SingleWriter pair (the operator's own image; the chart sets it).
    /// No agent when unset: a cut-off writer is then fenced only by
    /// `SemiSync` and by the operator.
    #[arg(long, env = "MYSQL_AA_AGENT_IMAGE")]
    pub agent_image: Option<String>,
    /// Address of the /metrics, /healthz and /readyz endpoints.
    #[arg(long, env = "MYSQL_AA_METRICS_ADDRESS", default_value = "0.0.0.0:8080")]
    pub metrics_address: String,
    /// Log format.
    #[arg(long, env = "MYSQL_AA_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Take a Lease before acting, so that only one replica acts.
    #[arg(long, env = "MYSQL_AA_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// The operator's namespace (the chart sets it from the pod): the
    /// leader-election Lease is there, and pairs' NetworkPolicies let the
    /// operator in from there.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "mysql-aa-operator")]
    pub lease_name: String,
    /// Watch only these namespaces (repeat the flag, or separate with
    /// commas); default: all namespaces. With a list, the operator needs
    /// permissions in those namespaces only (the Helm chart's namespaced
    /// mode grants exactly that).
    #[arg(long = "namespace", env = "MYSQL_AA_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Seconds to wait for a connection to a server.
    #[arg(long, default_value_t = 3)]
    pub connect_timeout_seconds: u64,
    /// Seconds any one statement may take.
    #[arg(long, default_value_t = 10)]
    pub statement_timeout_seconds: u64,
    /// Runtime copies of the timeouts.
    #[arg(skip = Duration::from_secs(3))]
    pub connect_timeout: Duration,
    /// Runtime copies of the timeouts.
    #[arg(skip = Duration::from_secs(10))]
    pub statement_timeout: Duration,
}

impl Settings {
    /// What the renderer takes from the operator's settings.
    pub fn render_options(&self) -> crate::render::RenderOptions {
        crate::render::RenderOptions {
            image: self.agent_image.clone(),
            operator_namespace: Some(self.lease_namespace.clone()),
        }
    }

    /// The observe interval.
    pub fn observe_interval(&self) -> Duration {
        Duration::from_secs(self.observe_interval_seconds.max(1))
    }
}
