//! The network: one namespace per host, joined by a bridge, or loopback when namespaces
//! cannot be made.
//!
//! ```text
//!  root namespace: brchaos0 10.77.0.1/24 (the orchestrator reaches the database here)
//!    ├─ vc-db       ── eth0 10.77.0.10  netns chaos-db        (PostgreSQL)
//!    ├─ vc-producer ── eth0 10.77.0.11  netns chaos-producer
//!    ├─ vc-w1       ── eth0 10.77.0.12  netns chaos-w1
//!    └─ ...
//! ```
//!
//! No namespace has a default route and the root namespace forwards nothing new, so the
//! run's traffic stays on the bridge. A worker's "link down" takes its bridge-side veth
//! down: that host alone is cut off, its processes keep running.

use std::process::{Command, Stdio};

/// The bridge's name in the root namespace.
const BRIDGE: &str = "brchaos0";
/// Every namespace of the harness starts with this.
const PREFIX: &str = "chaos-";

/// Where the run's processes live.
#[derive(Debug)]
pub(crate) enum Network {
    /// One namespace per host; dropping it deletes them and the bridge.
    Namespaces { hosts: Vec<String> },
    /// Everything on 127.0.0.1, with the reason namespaces could not be made.
    Loopback { reason: String },
}

impl Network {
    /// Removes what an earlier run that crashed left, then builds the bridge and one
    /// namespace per host (`db` first), or falls back to loopback and says why.
    pub(crate) fn build(hosts: &[&str]) -> Network {
        if !is_root() {
            return Network::Loopback {
                reason: "not running as root".to_owned(),
            };
        }
        remove_leftovers();
        let mut network = Network::Namespaces { hosts: Vec::new() };
        if let Err(reason) = network.add_bridge() {
            drop(network);
            return Network::Loopback { reason };
        }
        for (i, host) in hosts.iter().enumerate() {
            if let Err(reason) = network.add_host(host, i) {
                drop(network);
                return Network::Loopback { reason };
            }
        }
        network
    }

    /// Whether hosts are namespaces (and links can go down).
    pub(crate) fn is_namespaced(&self) -> bool {
        matches!(self, Network::Namespaces { .. })
    }

    /// The address a host listens on.
    pub(crate) fn address(&self, host: &str) -> String {
        match self {
            Network::Namespaces { hosts } => {
                let i = hosts.iter().position(|name| name == host).unwrap_or(0);
                format!("10.77.0.{}", 10 + i)
            }
            Network::Loopback { .. } => "127.0.0.1".to_owned(),
        }
    }

    /// `program` as a command that runs on `host`.
    pub(crate) fn command_on(&self, host: &str, program: &str) -> Command {
        match self {
            Network::Namespaces { .. } => {
                // `ip netns exec` enters the namespace and execs the program: same pid,
                // so signals sent to the child reach the program itself.
                let mut command = Command::new("ip");
                command.args(["netns", "exec", &namespace(host), program]);
                command
            }
            Network::Loopback { .. } => Command::new(program),
        }
    }

    /// Takes `host`'s link to the bridge down (`up = false`) or up again.
    pub(crate) fn set_link(&self, host: &str, up: bool) -> Result<(), String> {
        if !self.is_namespaced() {
            return Err("no links on loopback".to_owned());
        }
        ip(&["link", "set", &veth(host), if up { "up" } else { "down" }])
    }

    fn add_bridge(&mut self) -> Result<(), String> {
        ip(&["link", "add", BRIDGE, "type", "bridge"])?;
        ip(&["addr", "add", "10.77.0.1/24", "dev", BRIDGE])?;
        ip(&["link", "set", BRIDGE, "up"])
    }

    fn add_host(&mut self, host: &str, i: usize) -> Result<(), String> {
        let Network::Namespaces { hosts } = self else {
            return Ok(());
        };
        let ns = namespace(host);
        ip(&["netns", "add", &ns])?;
        hosts.push(host.to_owned());
        ip(&[
            "link",
            "add",
            &veth(host),
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &ns,
        ])?;
        ip(&["link", "set", &veth(host), "master", BRIDGE])?;
        ip(&["link", "set", &veth(host), "up"])?;
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("10.77.0.{}/24", 10 + i),
            "dev",
            "eth0",
        ])?;
        ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        if let Network::Namespaces { hosts } = self {
            for host in hosts.iter() {
                // Deleting a namespace deletes its end of the veth pair, and with it ours.
                let _ = ip(&["netns", "del", &namespace(host)]);
            }
            let _ = ip(&["link", "del", BRIDGE]);
        }
    }
}

fn namespace(host: &str) -> String {
    format!("{PREFIX}{host}")
}

/// The bridge-side end of `host`'s veth pair (interface names are at most 15 bytes).
fn veth(host: &str) -> String {
    format!("vc-{host}")
}

/// Deletes namespaces and the bridge left by a run that did not clean up, after killing
/// the processes still inside those namespaces (that run's workers and server).
fn remove_leftovers() {
    let listed = Command::new("ip").args(["netns", "list"]).output();
    let names: Vec<String> = listed
        .map(|output| {
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .filter_map(|line| line.split_whitespace().next())
                .filter(|name| name.starts_with(PREFIX))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    for name in &names {
        let pids = Command::new("ip").args(["netns", "pids", name]).output();
        if let Ok(pids) = pids {
            for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
                let _ = Command::new("kill")
                    .args(["-KILL", pid])
                    .stderr(Stdio::null())
                    .status();
            }
        }
        let _ = ip(&["netns", "del", name]);
    }
    if !names.is_empty() {
        println!(
            "removed {} namespace(s) left by an earlier run",
            names.len()
        );
    }
    let _ = ip(&["link", "del", BRIDGE]);
}

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("ip {}: {error}", args.join(" ")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Whether this process runs as root (namespaces need it).
pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
        .unwrap_or(false)
}
