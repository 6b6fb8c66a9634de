//! The box's network. A "router" network namespace per box holds a bridge
//! with the pods' /25 and runs kube-proxy, so each box has netfilter rules
//! of its own (several boxes run at once on one machine); each pod has a
//! network namespace of its own on that bridge (a veth pair), so each pod
//! has its own address and can be cut off. The host reaches the router over
//! one more veth pair (the "uplink"), with routes to the pods' /25 and the
//! box's Service range through it; the API server listens on the host's end
//! of the uplink, so kube-proxy in the router reaches it. Needs root and
//! iproute2.
//!
//! ```text
//!  host ── <bridge>h (P.253/30) ═══ uplink (P.254/30) ── router netns ── bridge (P.1/25) ══ pod netns (P.n/25)
//! ```
//!
//! The uplink's /30 lies outside the pods' /25, so a pod answers the host
//! through its gateway (within one /24, the host would look on-link).

use std::process::Command;

/// Runs `ip` with `args`.
fn ip(args: &[&str]) -> std::io::Result<()> {
    let out = Command::new("ip").args(args).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// The first address of a range (`10.96.3.0/24` -> `10.96.3.1`): the
/// `kubernetes` Service's.
pub fn first_address(cidr: &str) -> String {
    let base = cidr.split('/').next().unwrap_or(cidr);
    match base.rsplit_once('.') {
        Some((head, _)) => format!("{head}.1"),
        None => base.to_string(),
    }
}

/// A pod's network: its namespace and address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodNet {
    /// Network namespace name (`ip netns`).
    pub netns: String,
    /// The pod's IPv4 address.
    pub ip: String,
    /// The router's end of the pod's veth pair, on the bridge.
    pub veth: String,
}

/// The box's router namespace, bridge, and address ranges.
#[derive(Debug)]
pub struct Network {
    bridge: String,
    /// First three octets of the pods' /25.
    prefix: String,
    /// The box's Service range (a /24).
    service_cidr: String,
    next: u16,
    pods: Vec<PodNet>,
}

/// The last pod address of the /25 (.253 and .254 are the uplink's).
const LAST_POD: u16 = 126;

impl Network {
    /// Creates the router namespace with a bridge on a random /25 in
    /// 10.200.0.0/13, the uplink and the host's routes; the Service range
    /// is a random /24 in 10.96.0.0/12.
    pub fn create() -> std::io::Result<Self> {
        let mut last = None;
        for _ in 0..8 {
            let r = uuid::Uuid::new_v4().as_u128();
            let bridge = format!("sbx{:05x}", r & 0xfffff);
            let prefix = format!("10.{}.{}", 200 + (r >> 20) % 8, (r >> 24) % 256);
            let service_cidr = format!("10.{}.{}.0/24", 96 + (r >> 32) % 16, (r >> 36) % 256);
            let net = Self {
                bridge,
                prefix,
                service_cidr,
                next: 2,
                pods: Vec::new(),
            };
            match net.setup() {
                Ok(()) => return Ok(net),
                Err(e) => {
                    remove_bridge_and_pods(&net.bridge);
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no network")))
    }

    fn setup(&self) -> std::io::Result<()> {
        let r = self.router();
        let (b, p) = (&self.bridge, &self.prefix);
        let host_end = format!("{b}h");
        ip(&["netns", "add", &r])?;
        ip(&["-n", &r, "link", "set", "lo", "up"])?;
        ip(&["-n", &r, "link", "add", b, "type", "bridge"])?;
        ip(&["-n", &r, "addr", "add", &format!("{p}.1/25"), "dev", b])?;
        ip(&["-n", &r, "link", "set", b, "up"])?;
        ip(&[
            "link", "add", &host_end, "type", "veth", "peer", "name", "uplink", "netns", &r,
        ])?;
        ip(&["addr", "add", &format!("{p}.253/30"), "dev", &host_end])?;
        ip(&["link", "set", &host_end, "up"])?;
        ip(&[
            "-n",
            &r,
            "addr",
            "add",
            &format!("{p}.254/30"),
            "dev",
            "uplink",
        ])?;
        ip(&["-n", &r, "link", "set", "uplink", "up"])?;
        ip(&[
            "-n",
            &r,
            "route",
            "add",
            "default",
            "via",
            &format!("{p}.253"),
        ])?;
        ip(&[
            "route",
            "add",
            &format!("{p}.0/25"),
            "via",
            &format!("{p}.254"),
        ])?;
        ip(&[
            "route",
            "add",
            &self.service_cidr,
            "via",
            &format!("{p}.254"),
        ])?;
        let forward = Command::new("ip")
            .args([
                "netns",
                "exec",
                &r,
                "sh",
                "-c",
                "echo 1 > /proc/sys/net/ipv4/ip_forward",
            ])
            .status()?;
        if !forward.success() {
            return Err(std::io::Error::other("enabling forwarding in the router"));
        }
        Ok(())
    }

    /// The bridge's name (also the prefix of the box's namespaces).
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// The router namespace (the bridge, kube-proxy).
    pub fn router(&self) -> String {
        format!("{}-r", self.bridge)
    }

    /// The pods' gateway: the router's address on the bridge.
    pub fn gateway(&self) -> String {
        format!("{}.1", self.prefix)
    }

    /// The host's address on the uplink: what the API server listens on.
    pub fn host_address(&self) -> String {
        format!("{}.253", self.prefix)
    }

    /// The pods' range.
    pub fn pod_cidr(&self) -> String {
        format!("{}.0/25", self.prefix)
    }

    /// The box's Service range.
    pub fn service_cidr(&self) -> &str {
        &self.service_cidr
    }

    /// A new namespace with the next free address.
    pub fn add_pod(&mut self) -> std::io::Result<PodNet> {
        if self.next > LAST_POD {
            return Err(std::io::Error::other("the box's /25 is full"));
        }
        let n = self.next;
        self.next += 1;
        let r = self.router();
        let netns = format!("{}-{n}", self.bridge);
        let veth = format!("{}v{n}", self.bridge);
        let addr = format!("{}.{n}", self.prefix);
        ip(&["netns", "add", &netns])?;
        let setup = ip(&[
            "-n", &r, "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &netns,
        ])
        .and_then(|()| ip(&["-n", &r, "link", "set", &veth, "master", &self.bridge, "up"]))
        .and_then(|()| {
            ip(&[
                "-n",
                &netns,
                "addr",
                "add",
                &format!("{addr}/25"),
                "dev",
                "eth0",
            ])
        })
        .and_then(|()| ip(&["-n", &netns, "link", "set", "eth0", "up"]))
        .and_then(|()| ip(&["-n", &netns, "link", "set", "lo", "up"]))
        .and_then(|()| {
            ip(&[
                "-n",
                &netns,
                "route",
                "add",
                "default",
                "via",
                &self.gateway(),
            ])
        });
        if let Err(e) = setup {
            let _ = ip(&["netns", "del", &netns]);
            return Err(e);
        }
        let pod = PodNet {
            netns,
            ip: addr,
            veth,
        };
        self.pods.push(pod.clone());
        Ok(pod)
    }

    /// Kills whatever still runs in `pod`'s namespace and removes it.
    pub fn remove_pod(&mut self, pod: &PodNet) {
        kill_netns(&pod.netns);
        let _ = ip(&["netns", "del", &pod.netns]);
        let _ = ip(&["-n", &self.router(), "link", "del", &pod.veth]);
        self.pods.retain(|p| p != pod);
    }

    /// Removes every pod namespace and the router (with its bridge, veths
    /// and the uplink; the host's routes go with the uplink).
    pub fn cleanup(&mut self) {
        self.pods.clear();
        remove_bridge_and_pods(&self.bridge);
    }
}

/// Removes a box's namespaces (pods and router) and links named after its
/// bridge, killing what runs in them (also a killed box's leftovers).
pub fn remove_bridge_and_pods(bridge: &str) {
    if !bridge.starts_with("sbx") {
        return;
    }
    if let Ok(out) = Command::new("ip").args(["netns", "list"]).output() {
        for ns in String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| n.starts_with(&format!("{bridge}-")))
        {
            kill_netns(ns);
            let _ = ip(&["netns", "del", ns]);
        }
    }
    if let Ok(out) = Command::new("ip").args(["-o", "link", "show"]).output() {
        for link in String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .filter(|n| n.starts_with(bridge))
        {
            let _ = ip(&["link", "del", &link]);
        }
    }
}

/// SIGKILL to every process in a network namespace.
pub fn kill_netns(netns: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", netns]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-KILL", pid]).output();
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.cleanup();
    }
}
