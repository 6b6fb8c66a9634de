//! Pod networking: a Linux bridge per box and a network namespace per pod,
//! joined by a veth pair, so each pod has its own address (and can later be
//! cut off). Needs root and iproute2.

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

/// A pod's network: its namespace and address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodNet {
    /// Network namespace name (`ip netns`).
    pub netns: String,
    /// The pod's IPv4 address.
    pub ip: String,
    /// The host side of the pod's veth pair, on the bridge.
    pub veth: String,
}

/// The box's bridge and its /24.
#[derive(Debug)]
pub struct Network {
    bridge: String,
    /// First three octets of the subnet.
    prefix: String,
    next: u16,
    pods: Vec<PodNet>,
}

impl Network {
    /// Creates a bridge with a random name and /24 in 10.200.0.0/13.
    pub fn create() -> std::io::Result<Self> {
        let mut last = None;
        for _ in 0..8 {
            let r = uuid::Uuid::new_v4().as_u128();
            let bridge = format!("sbx{:05x}", r & 0xfffff);
            let prefix = format!("10.{}.{}", 200 + (r >> 20) % 8, (r >> 24) % 256);
            let created = ip(&["link", "add", &bridge, "type", "bridge"])
                .and_then(|()| ip(&["addr", "add", &format!("{prefix}.1/24"), "dev", &bridge]))
                .and_then(|()| ip(&["link", "set", &bridge, "up"]));
            match created {
                Ok(()) => {
                    return Ok(Self {
                        bridge,
                        prefix,
                        next: 2,
                        pods: Vec::new(),
                    });
                }
                Err(e) => {
                    let _ = ip(&["link", "del", &bridge]);
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no bridge")))
    }

    /// The bridge's name (also the prefix of the pods' namespaces).
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// The host's address on the bridge.
    pub fn gateway(&self) -> String {
        format!("{}.1", self.prefix)
    }

    /// A new namespace with the next free address.
    pub fn add_pod(&mut self) -> std::io::Result<PodNet> {
        if self.next > 254 {
            return Err(std::io::Error::other("the box's /24 is full"));
        }
        let n = self.next;
        self.next += 1;
        let netns = format!("{}-{n}", self.bridge);
        let veth = format!("{}v{n}", self.bridge);
        let addr = format!("{}.{n}", self.prefix);
        ip(&["netns", "add", &netns])?;
        let setup = ip(&[
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &netns,
        ])
        .and_then(|()| ip(&["link", "set", &veth, "master", &self.bridge, "up"]))
        .and_then(|()| {
            ip(&[
                "-n",
                &netns,
                "addr",
                "add",
                &format!("{addr}/24"),
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
        release(pod);
        self.pods.retain(|p| p != pod);
    }

    /// Removes every pod namespace and the bridge.
    pub fn cleanup(&mut self) {
        for pod in std::mem::take(&mut self.pods) {
            release(&pod);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}

/// Kills the pod's processes and removes its namespace and veth pair. The
/// host end is deleted explicitly: a namespace that a dying process still
/// holds outlives `ip netns del`, and its veth with it.
fn release(pod: &PodNet) {
    kill_netns(&pod.netns);
    let _ = ip(&["netns", "del", &pod.netns]);
    let _ = ip(&["link", "del", &pod.veth]);
}

/// Removes a box's bridge and every pod namespace and veth named after it,
/// killing what runs in them (a killed box's leftovers).
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
            .filter(|n| n.starts_with(&format!("{bridge}v")))
        {
            let _ = ip(&["link", "del", &link]);
        }
    }
    let _ = ip(&["link", "del", bridge]);
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
