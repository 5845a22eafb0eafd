//! The `network` and `volume` groups against a real berthd: request bodies and queries
//! are the docker CLI's (compared through the logging proxy), outputs are docker's
//! against the same daemon, and errors are docker's (messages and exit codes).

mod common;

use std::process::Output;

use common::proxy::Proxy;
use common::{Daemon, BERTH};
use serde_json::Value;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// Removes a test's networks when it ends, even by a panic (their containers first: they
/// hold endpoints). The daemon is killed at the end, and a killed berthd leaves the
/// bridges of its networks behind.
struct Nets<'a>(&'a Daemon);

impl Drop for Nets<'_> {
    fn drop(&mut self) {
        let d = self.0;
        let (_, list) = d.http("GET", "/containers/json?all=1", "");
        if let Ok(Value::Array(cs)) = serde_json::from_str(&list) {
            for c in cs {
                if let Some(id) = c["Id"].as_str() {
                    let _ = d.http("DELETE", &format!("/containers/{id}?force=1"), "");
                }
            }
        }
        let (_, list) = d.http("GET", "/networks", "");
        if let Ok(Value::Array(ns)) = serde_json::from_str(&list) {
            for n in ns {
                let (Some(id), Some(name)) = (n["Id"].as_str(), n["Name"].as_str()) else {
                    continue;
                };
                if !["bridge", "host", "none"].contains(&name) {
                    let _ = d.http("DELETE", &format!("/networks/{id}"), "");
                    let _ = std::process::Command::new("ip")
                        .args(["link", "del", &format!("br-{}", &id[..12.min(id.len())])])
                        .output();
                }
            }
        }
    }
}

/// A /24 of this daemon's own: the /26 of its default bridge starts a /22 no other
/// daemon of the test run uses (`i` in 1..=3 picks the /24 after it).
fn subnet(d: &Daemon, i: u8) -> (String, String) {
    let (_, b) = d.http("GET", "/networks/bridge", "");
    let v: Value = serde_json::from_str(&b).unwrap();
    let s = v["IPAM"]["Config"][0]["Subnet"].as_str().unwrap();
    let o: Vec<u8> = s
        .split('/')
        .next()
        .unwrap()
        .split('.')
        .map(|p| p.parse().unwrap())
        .collect();
    let prefix = format!("{}.{}.{}", o[0], o[1], o[2] + i);
    (format!("{prefix}.0/24"), prefix)
}

/// Run `args` through docker and berth against the proxy, `{}` in them standing for a
/// name of each's own (`_docker`, `_berth`); `undo` runs after each with that name.
fn both(d: &Daemon, p: &Proxy, args: &[&str], undo: &dyn Fn(&str)) -> Vec<(Vec<common::proxy::Sent>, Output)> {
    let mut out = Vec::new();
    for (bin, tag) in [("docker", "_docker"), (BERTH, "_berth")] {
        p.clear();
        let args: Vec<String> = args.iter().map(|a| a.replace("{}", tag)).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = d
            .command(bin, &args)
            .env("BERTH_HOST", p.host())
            .env("DOCKER_HOST", p.host())
            .output()
            .unwrap();
        let sent = p.sent();
        undo(tag);
        out.push((sent, o));
    }
    out
}

/// The body of the request to `needle`, each tool's name made one, and docker's map-ordered
/// IPAM pools in order.
fn body(sent: &[common::proxy::Sent], needle: &str) -> Value {
    let found: Vec<_> = sent.iter().filter(|s| s.line.contains(needle)).collect();
    assert_eq!(found.len(), 1, "{:?}", sent.iter().map(|s| &s.line).collect::<Vec<_>>());
    let s = text(&found[0].body).replace("_docker", "_X").replace("_berth", "_X");
    let mut v: Value = serde_json::from_str(&s).unwrap();
    if let Some(c) = v["IPAM"]["Config"].as_array_mut() {
        c.sort_by_key(|p| p["Subnet"].to_string());
    }
    v
}

/// docker and berth send the same body to `needle` for `args`, and exit alike.
fn same_body(d: &Daemon, p: &Proxy, needle: &str, args: &[&str], undo: &dyn Fn(&str)) {
    let r = both(d, p, args, undo);
    let (docker, berth) = (body(&r[0].0, needle), body(&r[1].0, needle));
    assert_eq!(
        docker,
        berth,
        "bodies differ for {args:?}\n--- docker:\n{docker:#}\n--- berth:\n{berth:#}\n--- docker said: {}\n--- berth said: {}",
        text(&r[0].1.stderr),
        text(&r[1].1.stderr)
    );
    assert_eq!(
        r[0].1.status.code(),
        r[1].1.status.code(),
        "{args:?}: {}",
        text(&r[1].1.stderr)
    );
}

/// docker and berth make the same requests (method, path, query) for `args`.
fn same_requests(d: &Daemon, p: &Proxy, args: &[&str]) {
    let r = both(d, p, args, &|_| {});
    let lines = |s: &[common::proxy::Sent]| -> Vec<String> {
        s.iter()
            .map(|x| x.line.trim_end_matches(" HTTP/1.1").to_string())
            .filter(|l| l != "HEAD /_ping")
            .collect()
    };
    assert_eq!(lines(&r[0].0), lines(&r[1].0), "{args:?}");
    assert_eq!(r[0].1.status.code(), r[1].1.status.code(), "{args:?}");
}

/// docker and berth fail alike: exit code and message (docker's own name aside).
fn same_failure(d: &Daemon, args: &[&str]) -> String {
    let (o_d, o_b) = (d.docker(args), d.berth(args));
    assert_ne!(o_b.status.code(), Some(0), "{args:?}");
    assert_eq!(o_d.status.code(), o_b.status.code(), "{args:?}: {}", text(&o_b.stderr));
    assert_eq!(
        text(&o_d.stderr).replace("docker", "berth"),
        text(&o_b.stderr),
        "{args:?}"
    );
    text(&o_b.stderr)
}

/// The same stdout from docker and berth (both must succeed).
fn same_output(d: &Daemon, args: &[&str]) -> String {
    let (docker, berth) = (d.docker_ok(args), d.ok(args));
    assert_eq!(docker, berth, "{args:?}");
    berth
}

#[test]
fn requests_are_the_docker_clis() {
    let d = Daemon::start();
    let _nets = Nets(&d);
    d.import_busybox("busybox");
    let p = Proxy::start(d.dir.path(), &d.sock);
    let ((s1, p1), (s2, p2)) = (subnet(&d, 1), subnet(&d, 2));
    let rm_net = |tag: &str| {
        let _ = d.berth(&["network", "rm", &format!("net{tag}")]);
    };
    same_body(&d, &p, "/networks/create", &["network", "create", "net{}"], &rm_net);
    let (gw, range, aux) = (format!("{p1}.1"), format!("{p1}.128/25"), format!("host1={p1}.5"));
    #[rustfmt::skip]
    let all = [
        "network", "create", "-d", "bridge", "--subnet", &s1, "--gateway", &gw, "--ip-range", &range, "--internal",
        "--label", "a=b", "--label", "c", "-o", "com.docker.network.bridge.enable_icc=false", "-o", "x",
        "--attachable", "--ipam-driver", "default", "--ipam-opt", "k=v", "--aux-address", &aux, "net{}",
    ];
    same_body(&d, &p, "/networks/create", &all, &rm_net);
    // Several subnets in one flag (docker's pools come from a map: sorted to compare).
    let subnets = format!("{s1},{s2}");
    let gw2 = format!("{p2}.1");
    #[rustfmt::skip]
    let pools = [
        "network", "create", "--subnet", &subnets, "--gateway", &gw2, "--ip-range", &range, "--ipv4=true",
        "--ipv6=false", "--scope", "local", "--config-from", "bridge", "net{}",
    ];
    same_body(&d, &p, "/networks/create", &pools, &rm_net);
    same_body(
        &d,
        &p,
        "/networks/create",
        &["network", "create", "--ingress", "--config-only", "net{}"],
        &rm_net,
    );
    // What docker refuses itself is refused alike (nothing is sent).
    for bad in [
        vec!["network", "create", "--gateway", "10.1.0.1", "nx"],
        vec!["network", "create", "--subnet", &s1, "--ip-range", "bad", "nx"],
        vec!["network", "create", "--subnet", &s1, "--gateway", &gw2, "nx"],
        vec!["network", "create", "--subnet", &subnets, "--subnet", &s1, "nx"],
    ] {
        let e = same_failure(&d, &bad);
        assert!(!e.is_empty());
    }

    // connect and disconnect, to a container of each's own.
    let (s3, p3) = subnet(&d, 3);
    d.ok(&["network", "create", "--subnet", &s3, "k1"]);
    for c in ["c_docker", "c_berth"] {
        d.ok(&["create", "--name", c, "busybox", "true"]);
    }
    let off = |tag: &str| {
        let _ = d.berth(&["network", "disconnect", "k1", &format!("c{tag}")]);
    };
    same_body(&d, &p, "/connect", &["network", "connect", "k1", "c{}"], &off);
    let ip = format!("{p3}.50");
    #[rustfmt::skip]
    let flags = [
        "network", "connect", "--alias", "a1", "--alias", "a2,a3", "--ip", &ip, "--ip6", "fd00::5", "--link", "c{}:x",
        "--link-local-ip", "169.254.1.1", "--link-local-ip", "169.254.1.2,169.254.1.3", "--driver-opt", "k=v",
        "--driver-opt", " k2 = v2 ,k3=v3", "--gw-priority", "-5", "k1", "c{}",
    ];
    same_body(&d, &p, "/connect", &flags, &off);
    for force in [false, true] {
        for c in ["c_docker", "c_berth"] {
            d.ok(&["network", "connect", "k1", c]);
        }
        let args = if force {
            vec!["network", "disconnect", "-f", "k1", "c{}"]
        } else {
            vec!["network", "disconnect", "k1", "c{}"]
        };
        same_body(&d, &p, "/disconnect", &args, &|_| {});
    }
    let e = same_failure(&d, &["network", "connect", "--driver-opt", "noeq", "k1", "c_berth"]);
    assert_eq!(e, "invalid key/value pair format in driver options\n");

    // volume create.
    let rm_vol = |tag: &str| {
        let _ = d.berth(&["volume", "rm", &format!("vol{tag}")]);
    };
    #[rustfmt::skip]
    let vol = ["volume", "create", "-d", "local", "--label", "a=b", "--label", "c", "-o", "type=tmpfs",
               "-o", "device=tmpfs", "-o", "o=size=1m", "vol{}"];
    same_body(&d, &p, "/volumes/create", &vol, &rm_vol);
    same_body(
        &d,
        &p,
        "/volumes/create",
        &["volume", "create", "--name", "vol{}"],
        &rm_vol,
    );
    let r = both(&d, &p, &["volume", "create"], &|_| {});
    assert_eq!(body(&r[0].0, "/volumes/create"), body(&r[1].0, "/volumes/create"));
    for (_, o) in &r {
        d.ok(&["volume", "rm", text(&o.stdout).trim()]);
    }

    // Lists, inspects, removals and prunes ask the same: filters, flags, paths.
    for args in [
        vec![
            "network",
            "ls",
            "-f",
            "driver=bridge",
            "-f",
            "name=k",
            "--filter",
            "name=x",
        ],
        vec!["network", "inspect", "-v", "bridge"],
        vec!["network", "prune", "-f", "--filter", "label=nothing-has-it"],
        vec!["volume", "ls", "-f", "dangling=true", "-f", "label=a"],
        vec!["volume", "inspect", "nosuch"],
        vec!["volume", "rm", "-f", "nosuch"],
        vec!["volume", "prune", "-f"],
        vec!["volume", "prune", "-f", "-a", "--filter", "label=nothing-has-it"],
    ] {
        same_requests(&d, &p, &args);
    }
    d.ok(&["rm", "c_docker", "c_berth"]);
    d.ok(&["network", "rm", "k1"]);
}

#[test]
fn networks() {
    let d = Daemon::start();
    let _nets = Nets(&d);
    d.import_busybox("busybox");
    // The group alone: docker's usage (stderr, exit 0; stdout for --help).
    let o = d.berth(&["network"]);
    assert!(o.status.success() && o.stdout.is_empty());
    let usage = text(&o.stderr);
    assert!(
        usage.starts_with("Usage:  berth network COMMAND\n\nManage networks\n\nCommands:\n  connect     Connect a container to a network\n"),
        "{usage}"
    );
    assert!(usage.contains("\n  rm          Remove one or more networks\n\nRun 'berth network COMMAND --help'"));
    assert_eq!(d.ok(&["network", "--help"]), usage.trim());
    let e = d.fails(1, &["network", "bogus"]);
    assert!(e.starts_with("berth: unknown command: berth network bogus\n"), "{e}");
    // Wrong argument counts are docker's (exit 1); unknown flags are usage errors (125).
    for args in [
        vec!["network", "create"],
        vec!["network", "create", "a", "b"],
        vec!["network", "connect", "a"],
        vec!["network", "disconnect"],
        vec!["network", "rm"],
        vec!["network", "inspect"],
        vec!["network", "ls", "extra"],
        vec!["network", "prune", "extra"],
    ] {
        same_failure(&d, &args);
    }
    d.fails(125, &["network", "ls", "--bogus"]);

    let ((s1, p1), (s2, _)) = (subnet(&d, 1), subnet(&d, 2));
    let id = d.ok(&[
        "network", "create", "--subnet", &s1, "--label", "a=b", "-o", "x=y", "n1",
    ]);
    assert_eq!(id.len(), 64, "{id}");
    d.ok(&["network", "create", "--subnet", &s2, "--internal", "n10"]);
    // A duplicate name is refused (the first is kept); a new name is fine.
    let e = same_failure(&d, &["network", "create", "n1"]);
    assert_eq!(e, "Error response from daemon: network with name n1 already exists\n");
    let e = same_failure(&d, &["network", "create", "--subnet", &s1, "n2"]);
    assert!(e.contains("overlaps"), "{e}");
    assert_eq!(d.ok(&["network", "inspect", "-f", "{{.Id}}", "n1"]), id);

    // Lists: docker's tables (names in natural order: n1 before n10), formats, filters.
    let table = same_output(&d, &["network", "ls"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], "NETWORK ID     NAME      DRIVER    SCOPE");
    let names: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(names, ["bridge", "host", "n1", "n10", "none"]);
    assert!(
        table.contains(&format!("{}   n1        bridge    local", &id[..12])),
        "{table}"
    );
    for args in [
        vec!["network", "ls", "-q"],
        vec!["network", "list", "--no-trunc"],
        vec!["network", "ls", "--filter", "name=n1", "--filter", "driver=bridge"],
        vec!["network", "ls", "-f", "label=a=b", "-q", "--no-trunc"],
        vec!["network", "ls", "--format", "json"],
        vec!["network", "ls", "--format", "raw"],
        vec!["network", "ls", "-q", "--format", "{{.Name}} {{.Driver}}"],
        vec![
            "network",
            "ls",
            "--format",
            "table {{.ID}}\t{{.IPv4}}\t{{.IPv6}}\t{{.Internal}}\t{{.Labels}}\t{{.Label \"a\"}}\t{{.CreatedAt}}",
        ],
    ] {
        same_output(&d, &args);
    }
    assert_eq!(d.ok(&["network", "ls", "-q", "-f", "label=a"]), &id[..12]);
    let e = d.fails(1, &["network", "ls", "--format", "{{"]);
    assert!(e.starts_with("template parsing error"), "{e}");

    // inspect: docker's JSON array, and templates.
    let doc = same_output(&d, &["network", "inspect", "n1", "bridge"]);
    let v: Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(v[0]["Name"], "n1");
    assert_eq!(v[0]["IPAM"]["Config"][0]["Subnet"], s1.as_str());
    assert_eq!(v[0]["Labels"]["a"], "b");
    let f = "{{.Name}} {{.Driver}} {{.Scope}} {{.Internal}} {{.Labels}} {{.Options}} {{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}";
    let out = same_output(&d, &["network", "inspect", "-f", f, "n1", "n10"]);
    assert_eq!(
        out.lines().next().unwrap(),
        format!("n1 bridge local false map[a:b] map[x:y] {s1} {p1}.1")
    );
    // `--format json`: the same array, compact.
    let compact = same_output(&d, &["network", "inspect", "--format", "json", "none", "host"]);
    assert_eq!(compact.lines().count(), 1, "{compact}");
    let full: Value = serde_json::from_str(&same_output(&d, &["network", "inspect", "none", "host"])).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&compact).unwrap(), full);
    // An unknown network: the others are shown, exit 1 (nothing at all: `[]`).
    let o = d.berth(&["network", "inspect", "-f", "{{.Name}}", "n1", "nosuch"]);
    assert_eq!((o.status.code(), text(&o.stdout)), (Some(1), "n1\n".to_string()));
    assert_eq!(
        text(&o.stderr),
        "Error response from daemon: network nosuch not found\n"
    );
    let o = d.berth(&["network", "inspect", "nosuch"]);
    assert_eq!((o.status.code(), text(&o.stdout)), (Some(1), "[]\n".to_string()));
    same_failure(&d, &["network", "inspect", "nosuch"]);
    let o = d.berth(&["network", "inspect", "-f", "{{", "n1"]);
    assert_eq!(o.status.code(), Some(64), "{}", text(&o.stderr));

    // connect: a running container joins with an address and an alias of its own.
    d.ok(&["run", "-d", "--name", "web", "busybox", "sleep", "300"]);
    let ip = format!("{p1}.77");
    assert_eq!(
        d.ok(&["network", "connect", "--alias", "www", "--ip", &ip, "n1", "web"]),
        ""
    );
    let f = "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}";
    assert_eq!(
        same_output(&d, &["network", "inspect", "-f", f, "n1"]),
        format!("web {ip}/24")
    );
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{(index .NetworkSettings.Networks \"n1\").IPAddress}}",
            "web"
        ]),
        ip
    );
    let seen = d.ok(&["exec", "web", "ip", "-4", "-o", "addr"]);
    assert!(seen.contains(&format!("inet {ip}/24")), "{seen}");
    let e = same_failure(&d, &["network", "connect", "n1", "web"]);
    assert!(e.contains("already exists in network n1"), "{e}");
    same_failure(&d, &["network", "connect", "nosuch", "web"]);
    same_failure(&d, &["network", "connect", "n1", "nosuchcontainer"]);
    // rm of a network in use fails; the other named is removed all the same (exit 1).
    let o = d.berth(&["network", "rm", "n1", "n10"]);
    assert_eq!((o.status.code(), text(&o.stdout)), (Some(1), "n10\n".to_string()));
    let e = text(&o.stderr);
    assert!(
        e.starts_with("Error response from daemon: error while removing network: network n1 id ")
            && e.ends_with(" has active endpoints\nexit status 1\n"),
        "{e}"
    );
    same_failure(&d, &["network", "rm", "n1"]);
    // Disconnected, it goes.
    assert_eq!(d.ok(&["network", "disconnect", "n1", "web"]), "");
    let e = same_failure(&d, &["network", "disconnect", "n1", "web"]);
    assert!(e.contains("is not connected to network n1"), "{e}");
    assert_eq!(d.ok(&["network", "inspect", "-f", "{{len .Containers}}", "n1"]), "0");
    assert_eq!(d.ok(&["network", "remove", "n1"]), "n1");
    // A missing network: an error, unless -f; pre-defined ones stay.
    let e = same_failure(&d, &["network", "rm", "nosuch"]);
    assert_eq!(
        e,
        "Error response from daemon: network nosuch not found\nexit status 1\n"
    );
    assert_eq!(d.ok(&["network", "rm", "-f", "nosuch"]), "");
    let e = same_failure(&d, &["network", "rm", "bridge"]);
    assert!(e.contains("pre-defined network"), "{e}");

    // prune: asks first (on stdout, as docker); filters; lists what went.
    d.ok(&["network", "create", "--subnet", &s1, "--label", "keep=no", "p1"]);
    d.ok(&["network", "create", "--subnet", &s2, "p2"]);
    let o = d.berth_in(&["network", "prune"], b"n\n");
    assert!(o.status.success());
    assert_eq!(
        text(&o.stdout),
        "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] "
    );
    assert_eq!(d.ok(&["network", "ls", "-q", "-f", "name=p"]).lines().count(), 2);
    let o = d.berth_in(&["network", "prune", "--filter", "label=keep=no"], b"y\n");
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).ends_with("[y/N] Deleted Networks:\np1\n\n"),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(d.ok(&["network", "ls", "--format", "{{.Name}}", "-f", "name=p"]), "p2");
    assert_eq!(d.ok(&["network", "prune", "-f"]), "Deleted Networks:\np2");
    // Nothing left to prune: nothing said.
    let o = d.berth(&["network", "prune", "-f"]);
    assert!(o.status.success() && o.stdout.is_empty());
    same_output(&d, &["network", "prune", "-f"]);
}

#[test]
fn volumes() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    let o = d.berth(&["volume"]);
    assert!(o.status.success() && o.stdout.is_empty());
    let usage = text(&o.stderr);
    assert!(
        usage.starts_with(
            "Usage:  berth volume COMMAND\n\nManage volumes\n\nCommands:\n  create      Create a volume\n"
        ),
        "{usage}"
    );
    assert_eq!(d.ok(&["volume", "-h"]), usage.trim());
    d.fails(1, &["volume", "bogus"]);
    // (docker's own message has a typo here: "SRun".)
    let e = d.fails(1, &["volume", "create", "a", "b"]);
    assert!(
        e.starts_with("berth: 'berth volume create' requires at most 1 argument\n"),
        "{e}"
    );
    for args in [
        vec!["volume", "inspect"],
        vec!["volume", "rm"],
        vec!["volume", "ls", "x"],
        vec!["volume", "prune", "x"],
    ] {
        same_failure(&d, &args);
    }

    // create: named, anonymous (a generated name), with labels and options.
    assert_eq!(d.ok(&["volume", "create", "v1"]), "v1");
    let anon = d.ok(&["volume", "create"]);
    assert_eq!(anon.len(), 64, "{anon}");
    #[rustfmt::skip]
    let v2 = ["volume", "create", "-d", "local", "--label", "a=b", "-o", "type=tmpfs", "-o", "device=tmpfs",
              "-o", "o=size=1m", "v2"];
    assert_eq!(d.ok(&v2), "v2");
    assert_eq!(d.ok(&["volume", "create", "--name", "v10"]), "v10");
    let e = same_failure(&d, &["volume", "create", "--name", "x", "y"]);
    assert_eq!(
        e,
        "conflicting options: cannot specify a volume-name through both --name and as a positional arg\n"
    );
    let e = d.fails(125, &["volume", "create", "--label", "=x"]);
    assert!(e.contains("invalid label '=x': empty name"), "{e}");
    let e = same_failure(&d, &["volume", "create", "-d", "nosuchdriver", "vx"]);
    assert!(e.starts_with("Error response from daemon: "), "{e}");

    // ls: docker's table, in docker's (natural) order; formats and filters.
    let table = same_output(&d, &["volume", "ls"]);
    assert_eq!(
        table,
        format!("DRIVER    VOLUME NAME\nlocal     {anon}\nlocal     v1\nlocal     v2\nlocal     v10")
    );
    for args in [
        vec!["volume", "ls", "-q"],
        vec!["volume", "list", "--filter", "label=a=b"],
        vec!["volume", "ls", "-f", "name=v1", "--format", "json"],
        vec!["volume", "ls", "--format", "raw"],
        vec!["volume", "ls", "-q", "--format", "{{.Name}}: {{.Mountpoint}}"],
        vec![
            "volume",
            "ls",
            "--format",
            "table {{.Name}}\t{{.Labels}}\t{{.Label \"a\"}}\t{{.Scope}}\t{{.Size}}\t{{.Links}}\t{{.Status}}",
        ],
    ] {
        same_output(&d, &args);
    }
    assert_eq!(d.ok(&["volume", "ls", "-q", "-f", "label=a"]), "v2");

    // inspect: docker's JSON; templates; unknown volumes.
    let doc = same_output(&d, &["volume", "inspect", "v1", "v2"]);
    let v: Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(
        (v[1]["Name"].as_str(), v[1]["Options"]["type"].as_str()),
        (Some("v2"), Some("tmpfs"))
    );
    let out = same_output(
        &d,
        &[
            "volume",
            "inspect",
            "-f",
            "{{.Name}} {{.Driver}} {{.Labels}} {{.Options.type}}",
            "v2",
        ],
    );
    assert_eq!(out, "v2 local map[a:b] tmpfs");
    same_output(
        &d,
        &[
            "volume",
            "inspect",
            "--format",
            "{{.Mountpoint}} {{.Scope}} {{.CreatedAt}}",
            "v1",
            anon.as_str(),
        ],
    );
    same_output(&d, &["volume", "inspect", "--format", "json", "v1", "v2"]);
    let o = d.berth(&["volume", "inspect", "-f", "{{.Name}}", "nosuch", "v1"]);
    assert_eq!((o.status.code(), text(&o.stdout)), (Some(1), "v1\n".to_string()));
    let e = same_failure(&d, &["volume", "inspect", "nosuch"]);
    assert!(
        e.starts_with("Error response from daemon: ") && e.contains("nosuch"),
        "{e}"
    );

    // rm: a volume in use stays (even with -f), the other named goes; unknown ones fail.
    d.ok(&[
        "create", "--name", "user", "-v", "v1:/data", "-v", "/anon", "busybox", "true",
    ]);
    let o = d.berth(&["volume", "rm", "v1", "v10"]);
    assert_eq!((o.status.code(), text(&o.stdout)), (Some(1), "v10\n".to_string()));
    assert!(text(&o.stderr).contains("volume is in use"), "{}", text(&o.stderr));
    let e = same_failure(&d, &["volume", "rm", "-f", "v1"]);
    assert!(e.contains("volume is in use"), "{e}");
    let e = same_failure(&d, &["volume", "rm", "nosuch", "alsonot"]);
    assert_eq!(e.lines().count(), 2, "{e}");
    assert!(e.lines().all(|l| l.starts_with("Error response from daemon: ")), "{e}");
    let dbg = d.berth(&["-D", "volume", "rm", "-f", "nosuch"]);
    assert!(
        text(&dbg.stderr).contains("DELETE /v1.45/volumes/nosuch?force=1"),
        "{}",
        text(&dbg.stderr)
    );
    assert_eq!(d.ok(&["volume", "remove", anon.as_str()]), anon);

    // prune: anonymous volumes (the container's, once it is gone), then all unused ones.
    let anon_of_user = d.ok(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{if eq .Destination \"/anon\"}}{{.Name}}{{end}}{{end}}",
        "user",
    ]);
    assert_eq!(anon_of_user.len(), 64, "{anon_of_user}");
    d.ok(&["rm", "user"]);
    let o = d.berth_in(&["volume", "prune"], b"n\n");
    assert!(o.status.success());
    assert_eq!(
        text(&o.stdout),
        "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] "
    );
    let out = d.ok(&["volume", "prune", "-f"]);
    assert_eq!(
        out,
        format!("Deleted Volumes:\n{anon_of_user}\n\nTotal reclaimed space: 0B")
    );
    assert_eq!(d.ok(&["volume", "prune", "-f"]), "Total reclaimed space: 0B");
    same_output(&d, &["volume", "prune", "-f"]);
    let e = same_failure(&d, &["volume", "prune", "-f", "-a", "--filter", "all=1"]);
    assert!(e.contains("conflicting options"), "{e}");
    let o = d.berth_in(&["volume", "prune", "-a", "--filter", "label=a=b"], b"y\n");
    assert_eq!(
        text(&o.stdout),
        "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] Deleted Volumes:\nv2\n\nTotal reclaimed space: 0B\n"
    );
    assert_eq!(
        d.ok(&["volume", "prune", "-af"]),
        "Deleted Volumes:\nv1\n\nTotal reclaimed space: 0B"
    );
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "");
}
