//! Faults injected into a box's pods, for tests, benches and people
//! (`sandbox fault`): a pod's processes killed, paused or resumed; a pod
//! cut off from one peer (a partition) or from everything (isolation); and
//! healing.
//!
//! Network faults are one nftables table of the `bridge` family in the
//! box's router namespace, where every pod's veth meets the bridge: three
//! sets, `isolated` (addresses whose every packet is dropped, in and out),
//! `cut` (pairs of addresses that cannot talk) and `hostcut` (addresses cut
//! off from the router: the API server, the operator and every Service,
//! while the other pods still reach them), and three chains
//! (`forward` between pods, `input` and `output` between a pod and the
//! router, which carries the host's and the Services' traffic) that drop
//! what the sets name. A fault is an element added to a set; healing
//! deletes it. A Service's traffic is masqueraded by kube-proxy
//! (`--masquerade-all`), so a partition between two pods cuts their direct
//! traffic (replication uses pod addresses) but not a Service's; isolation
//! cuts both.

use std::path::Path;
use std::process::{Command, Stdio};

/// The table's name.
const TABLE: &str = "sandbox_faults";

/// Faults of one box, by its bridge.
#[derive(Clone, Debug)]
pub struct Faults {
    bridge: String,
}

/// Runs `cmd` (with `stdin` on its standard input); its output, or its
/// error output as the error.
fn run(cmd: &mut Command, stdin: Option<&str>) -> std::io::Result<String> {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(std::io::Error::other(format!(
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// The IPv4 addresses in `text`, in order.
fn addresses(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter(|w| w.split('.').count() == 4 && w.split('.').all(|o| o.parse::<u8>().is_ok()))
        .map(str::to_string)
        .collect()
}

impl Faults {
    /// The faults of the box whose bridge is `bridge`.
    pub fn for_bridge(bridge: &str) -> Self {
        Self {
            bridge: bridge.into(),
        }
    }

    /// The faults of the box running under `root` (from its state file).
    pub fn of_box(root: &Path) -> std::io::Result<Self> {
        let state = std::fs::read_to_string(root.join(crate::STATE))?;
        state
            .lines()
            .find_map(|l| l.strip_prefix("bridge "))
            .map(|b| Self::for_bridge(b.trim()))
            .ok_or_else(|| std::io::Error::other(format!("no box runs under {}", root.display())))
    }

    fn router(&self) -> String {
        format!("{}-r", self.bridge)
    }

    fn nft(&self, script: &str) -> std::io::Result<String> {
        run(
            Command::new("ip").args(["netns", "exec", &self.router(), "nft", "-f", "-"]),
            Some(script),
        )
    }

    /// Creates the table once (idempotent).
    fn ensure(&self) -> std::io::Result<()> {
        let mut script = format!(
            "add table bridge {TABLE}\n\
             add set bridge {TABLE} isolated {{ type ipv4_addr; }}\n\
             add set bridge {TABLE} cut {{ type ipv4_addr . ipv4_addr; }}\n\
             add set bridge {TABLE} hostcut {{ type ipv4_addr; }}\n"
        );
        for hook in ["forward", "input", "output"] {
            script.push_str(&format!(
                "add chain bridge {TABLE} {hook} {{ type filter hook {hook} priority -200; policy accept; }}\n"
            ));
        }
        self.nft(&script)?;
        // The rules, once.
        let listed = self.nft(&format!("list table bridge {TABLE}\n"))?;
        if !listed.contains("@isolated") {
            let mut rules = String::new();
            for hook in ["forward", "input", "output"] {
                rules.push_str(&format!(
                    "add rule bridge {TABLE} {hook} ip saddr @isolated drop\n\
                     add rule bridge {TABLE} {hook} ip daddr @isolated drop\n\
                     add rule bridge {TABLE} {hook} ip saddr . ip daddr @cut drop\n"
                ));
            }
            self.nft(&rules)?;
        }
        if !listed.contains("@hostcut") {
            // Between a pod and the router only: pods still reach each other.
            self.nft(&format!(
                "add rule bridge {TABLE} input ip saddr @hostcut drop\n\
                 add rule bridge {TABLE} output ip daddr @hostcut drop\n"
            ))?;
        }
        Ok(())
    }

    /// Drops every packet between `ip` and the router (the API server, the
    /// operator, Services); the other pods still reach it directly.
    pub fn cut_from_host(&self, ip: &str) -> std::io::Result<()> {
        self.ensure()?;
        self.nft(&format!("add element bridge {TABLE} hostcut {{ {ip} }}\n"))
            .map(drop)
    }

    /// Drops every packet from and to `ip`.
    pub fn isolate(&self, ip: &str) -> std::io::Result<()> {
        self.ensure()?;
        self.nft(&format!("add element bridge {TABLE} isolated {{ {ip} }}\n"))
            .map(drop)
    }

    /// Drops every packet between `a` and `b`, both ways.
    pub fn partition(&self, a: &str, b: &str) -> std::io::Result<()> {
        self.ensure()?;
        self.nft(&format!(
            "add element bridge {TABLE} cut {{ {a} . {b}, {b} . {a} }}\n"
        ))
        .map(drop)
    }

    /// Removes every fault that names `ip`.
    pub fn heal(&self, ip: &str) -> std::io::Result<()> {
        self.ensure()?;
        let isolated = addresses(&self.nft(&format!("list set bridge {TABLE} isolated\n"))?);
        if isolated.iter().any(|a| a == ip) {
            self.nft(&format!(
                "delete element bridge {TABLE} isolated {{ {ip} }}\n"
            ))?;
        }
        let hostcut = addresses(&self.nft(&format!("list set bridge {TABLE} hostcut\n"))?);
        if hostcut.iter().any(|a| a == ip) {
            self.nft(&format!(
                "delete element bridge {TABLE} hostcut {{ {ip} }}\n"
            ))?;
        }
        let cut = addresses(&self.nft(&format!("list set bridge {TABLE} cut\n"))?);
        for pair in cut.chunks(2) {
            if let [a, b] = pair
                && (a == ip || b == ip)
            {
                self.nft(&format!(
                    "delete element bridge {TABLE} cut {{ {a} . {b} }}\n"
                ))?;
            }
        }
        Ok(())
    }

    /// Removes every fault.
    pub fn heal_all(&self) -> std::io::Result<()> {
        self.ensure()?;
        self.nft(&format!(
            "flush set bridge {TABLE} isolated\nflush set bridge {TABLE} cut\nflush set bridge {TABLE} hostcut\n"
        ))
        .map(drop)
    }

    /// The network namespace of the pod whose address is `ip`.
    pub fn pod_netns(&self, ip: &str) -> String {
        format!(
            "{}-{}",
            self.bridge,
            ip.rsplit('.').next().unwrap_or_default()
        )
    }

    /// The processes of the pod whose address is `ip`.
    pub fn pod_pids(&self, ip: &str) -> std::io::Result<Vec<u32>> {
        let out = run(
            Command::new("ip").args(["netns", "pids", &self.pod_netns(ip)]),
            None,
        )?;
        Ok(out
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect())
    }

    /// Sends `signal` (`KILL`, `STOP`, `CONT`) to the pod's processes that
    /// run one of the programs `names` (all of them when empty); returns
    /// the pids signalled.
    pub fn signal(&self, ip: &str, signal: &str, names: &[&str]) -> std::io::Result<Vec<u32>> {
        let mut hit = Vec::new();
        for pid in self.pod_pids(ip)? {
            if names.is_empty() || runs_one_of(pid, names) {
                match run(
                    Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]),
                    None,
                ) {
                    Ok(_) => hit.push(pid),
                    // It exited since it was listed (a probe's command, say).
                    Err(_) if !std::path::Path::new(&format!("/proc/{pid}")).exists() => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(hit)
    }
}

/// Whether process `pid` runs one of the programs `names`: its command
/// name, or the file name of one of its first arguments (MySQL runs under
/// its prefix's own loader, so its command name is the loader's).
fn runs_one_of(pid: u32, names: &[&str]) -> bool {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let program = |arg: &[u8]| {
        let arg = String::from_utf8_lossy(arg);
        let file = arg.rsplit('/').next().unwrap_or_default().to_string();
        names.contains(&file.as_str())
    };
    names.contains(&comm.trim()) || cmdline.split(|b| *b == 0).take(4).any(program)
}

#[cfg(test)]
mod tests {
    use super::addresses;

    #[test]
    fn addresses_are_read_from_nft_listings() {
        let listing = "table bridge sandbox_faults {\n\tset cut {\n\t\ttype ipv4_addr . ipv4_addr\n\t\telements = { 10.201.7.2 . 10.201.7.3,\n\t\t\t     10.201.7.3 . 10.201.7.2 }\n\t}\n}\n";
        assert_eq!(
            addresses(listing),
            ["10.201.7.2", "10.201.7.3", "10.201.7.3", "10.201.7.2"]
        );
        assert!(addresses("set isolated { type ipv4_addr; }").is_empty());
    }
}
