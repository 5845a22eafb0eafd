//! runtime-spec 1.2 coverage, part 1: namespaces and mounts, each refusal or isolation
//! with a positive control in the same test. Real containers, as root.

mod common;

use std::os::unix::fs::MetadataExt;

use common::spec_helpers::*;
use common::{assert_nothing_left, Ct};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------
// Namespaces

#[test]
fn user_namespace_with_id_mappings() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("rootowned"), "x").unwrap();
    chown_tree(data.path(), 100000, 100000);
    std::os::unix::fs::lchown(data.path().join("rootowned"), Some(0), Some(0)).unwrap();
    chmod(data.path(), 0o755);
    let script = "id -u; id -g; cat /proc/self/uid_map; cat /proc/self/gid_map; \
                  stat -c %u /bin/busybox; stat -c %u /data/rootowned; touch /data/made && echo made";
    let mut c = Ct::new(&["sh", "-c", script]);
    add_namespace(&mut c, json!({"type": "user"}));
    c.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    add_mount(
        &mut c,
        json!({"destination": "/data", "type": "bind", "source": data.path(), "options": ["rbind"]}),
    );
    c.save();
    // The container's root (host uid 100000) must be able to reach its rootfs.
    chown_tree(&c.rootfs(), 100000, 100000);
    chmod(c.bundle.path(), 0o755);
    let out = squash(&run_ok(&c));
    assert_eq!(
        out, "0\n0\n0 100000 65536\n0 100000 65536\n0\n65534\nmade",
        "inside the user namespace"
    );
    let md = std::fs::metadata(data.path().join("made")).unwrap();
    assert_eq!((md.uid(), md.gid()), (100000, 100000), "owner on the host");
    assert_nothing_left(&c);

    // Positive control: without the user namespace, root is host root.
    std::fs::remove_file(data.path().join("made")).unwrap();
    chown_tree(data.path(), 0, 0);
    let mut c = Ct::new(&[
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; touch /data/made && echo made",
    ]);
    add_mount(
        &mut c,
        json!({"destination": "/data", "type": "bind", "source": data.path(), "options": ["rbind"]}),
    );
    c.save();
    assert_eq!(squash(&run_ok(&c)), "0\n0 0 4294967295\nmade");
    assert_eq!(std::fs::metadata(data.path().join("made")).unwrap().uid(), 0);
}

fn uptime() -> f64 {
    std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn time_namespace_offsets() {
    const OFF: f64 = 86400.0;
    let mut c = Ct::new(&["cat", "/proc/uptime"]);
    add_namespace(&mut c, json!({"type": "time"}));
    c.config["linux"]["timeOffsets"] = json!({
        "boottime": {"secs": OFF as i64, "nanosecs": 0},
        "monotonic": {"secs": OFF as i64, "nanosecs": 0}
    });
    c.save();
    let before = uptime();
    let inside: f64 = run_ok(&c).split_whitespace().next().unwrap().parse().unwrap();
    let after = uptime();
    assert!(
        inside >= before + OFF - 1.0 && inside <= after + OFF + 1.0,
        "uptime inside {inside}, host {before}..{after}"
    );
    // Positive control: no time namespace, no offset.
    let c = Ct::new(&["cat", "/proc/uptime"]);
    let before = uptime();
    let inside: f64 = run_ok(&c).split_whitespace().next().unwrap().parse().unwrap();
    assert!((inside - before).abs() < 30.0, "uptime inside {inside}, host {before}");
}

#[test]
fn cgroup_namespace_shows_root_paths() {
    let c = Ct::new(&["cat", "/proc/self/cgroup"]);
    assert!(
        c.config["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "cgroup"),
        "the default spec has a cgroup namespace"
    );
    let out = run_ok(&c);
    assert!(out.lines().count() > 3, "{out}");
    for l in out.lines() {
        assert!(l.ends_with(":/"), "not the namespace root: {l:?} in\n{out}");
    }
    // Positive control: without the namespace the container's own cgroup shows.
    let mut c = Ct::new(&["cat", "/proc/self/cgroup"]);
    remove_namespace(&mut c, "cgroup");
    c.save();
    let out = run_ok(&c);
    let want = format!("/berth-test-{}", c.id);
    let pids = out.lines().find(|l| l.contains(":pids:")).unwrap_or_default();
    assert!(pids.ends_with(&want), "pids line {pids:?} in\n{out}");
}

#[test]
fn join_namespaces_by_path() {
    let mut a = Ct::new(&["sleep", "30"]);
    a.config["hostname"] = "alpha".into();
    a.save();
    run_detached(&a);
    let pid = init_pid(&a);
    let a_net = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();

    let script = "hostname; readlink /proc/self/ns/net";
    let mut b = Ct::new(&["sh", "-c", script]);
    b.config.as_object_mut().unwrap().remove("hostname");
    for n in b.config["linux"]["namespaces"].as_array_mut().unwrap() {
        match n["type"].as_str().unwrap() {
            "network" => n["path"] = format!("/proc/{pid}/ns/net").into(),
            "uts" => n["path"] = format!("/proc/{pid}/ns/uts").into(),
            _ => {}
        }
    }
    b.save();
    let out = run_ok(&b);
    assert_eq!(out, format!("alpha\n{}\n", a_net.display()));

    // Positive control: the same container with namespaces of its own.
    let c = Ct::new(&["sh", "-c", script]);
    let out = run_ok(&c);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "berth");
    assert_ne!(lines[1], a_net.to_str().unwrap());
    // A namespace path that does not exist is refused by name.
    let mut d = Ct::new(&["true"]);
    d.config.as_object_mut().unwrap().remove("hostname");
    for n in d.config["linux"]["namespaces"].as_array_mut().unwrap() {
        if n["type"] == "uts" {
            n["path"] = "/proc/999999999/ns/uts".into();
        }
    }
    d.save();
    let (ok, err) = d.create();
    assert!(!ok);
    assert!(err.contains("linux.namespaces[uts].path"), "{err}");
    assert_nothing_left(&d);
}

// ---------------------------------------------------------------------------------------
// Mounts

#[test]
fn mount_rro_is_recursive() {
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir(data.path().join("sub")).unwrap();
    let mut hm = HostMounts::default();
    hm.tmpfs(&data.path().join("sub"), "size=1m");
    let script = "touch /data/top 2>/dev/null && echo top-rw || echo top-ro; \
                  touch /data/sub/x 2>/dev/null && echo sub-rw || echo sub-ro";
    let with = |opts: Value| {
        let mut c = Ct::new(&["sh", "-c", script]);
        add_mount(
            &mut c,
            json!({"destination": "/data", "type": "bind", "source": data.path(), "options": opts}),
        );
        c.save();
        run_ok(&c)
    };
    assert_eq!(with(json!(["rbind", "rro"])), "top-ro\nsub-ro\n");
    // Positive control: plain "ro" leaves the submount writable.
    assert_eq!(with(json!(["rbind", "ro"])), "top-ro\nsub-rw\n");
    assert!(data.path().join("sub/x").exists());
}

#[test]
fn mount_nosymfollow() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("f"), "content").unwrap();
    std::os::unix::fs::symlink("f", data.path().join("link")).unwrap();
    let script = "cat /data/f; echo; readlink /data/link; \
                  cat /data/link >/dev/null 2>&1 && echo followed || echo refused";
    let with = |opts: Value| {
        let mut c = Ct::new(&["sh", "-c", script]);
        add_mount(
            &mut c,
            json!({"destination": "/data", "type": "bind", "source": data.path(), "options": opts}),
        );
        c.save();
        run_ok(&c)
    };
    assert_eq!(with(json!(["bind", "nosymfollow"])), "content\nf\nrefused\n");
    // Positive control.
    assert_eq!(with(json!(["bind"])), "content\nf\nfollowed\n");
}

#[test]
fn mount_propagation_rslave_rshared_rprivate() {
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir(data.path().join("sub")).unwrap();
    let mut hm = HostMounts::default();
    hm.shared_bind(data.path());
    let start = |prop: &str| {
        let mut c = Ct::new(&["sleep", "30"]);
        add_mount(
            &mut c,
            json!({"destination": "/data", "type": "bind", "source": data.path(), "options": ["rbind", prop]}),
        );
        c.save();
        run_detached(&c);
        c
    };
    let slave = start("rslave");
    let shared = start("rshared");
    let private = start("rprivate");
    // A mount made on the host after the containers started.
    hm.tmpfs(&data.path().join("sub"), "size=1m");
    std::fs::write(data.path().join("sub/marker"), "propagated").unwrap();
    let look = |c: &Ct| stdout(&c.exec(&["sh", "-c", "cat /data/sub/marker 2>/dev/null || echo absent"]));
    assert_eq!(look(&slave), "propagated");
    assert_eq!(look(&shared), "propagated");
    assert_eq!(look(&private), "absent\n");
}

#[test]
fn tmpfs_options_visible_in_proc_mounts() {
    let mut c = Ct::new(&["sh", "-c", "grep ' /t ' /proc/mounts; stat -c %a /t"]);
    add_mount(
        &mut c,
        json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs",
               "options": ["size=2m", "mode=1770", "nosuid", "nodev", "noexec"]}),
    );
    c.save();
    let out = run_ok(&c);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let opts: Vec<&str> = lines[0].split_whitespace().nth(3).unwrap().split(',').collect();
    for want in ["rw", "nosuid", "nodev", "noexec", "size=2048k", "mode=1770"] {
        assert!(opts.contains(&want), "{want} missing in {}", lines[0]);
    }
    assert_eq!(lines[1], "1770");
}

#[test]
fn custom_readonly_and_masked_paths() {
    let script = "cat /ro-dir/f; echo; touch /ro-dir/x 2>/dev/null && echo ro-writable || echo ro-ro; \
                  ls -A /mask-dir | wc -l; wc -c < /mask-file; \
                  touch /mask-dir/x 2>/dev/null && echo mask-writable || echo mask-ro; \
                  touch /rw-dir/x && echo rw-ok; cat /plain";
    let mut c = Ct::new(&["sh", "-c", script]);
    let r = c.rootfs();
    for d in ["ro-dir", "mask-dir", "rw-dir"] {
        std::fs::create_dir(r.join(d)).unwrap();
    }
    std::fs::write(r.join("ro-dir/f"), "r").unwrap();
    std::fs::write(r.join("mask-dir/f"), "secret").unwrap();
    std::fs::write(r.join("mask-file"), "secret").unwrap();
    std::fs::write(r.join("plain"), "plain").unwrap();
    c.config["linux"]["readonlyPaths"] = json!(["/ro-dir", "/no-such-ro"]);
    c.config["linux"]["maskedPaths"] = json!(["/mask-dir", "/mask-file", "/no-such-mask"]);
    c.save();
    let out = run_ok(&c);
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines, ["r", "ro-ro", "0", "0", "mask-ro", "rw-ok", "plain"], "{out}");
    // The host files are untouched.
    assert_eq!(std::fs::read_to_string(r.join("mask-file")).unwrap(), "secret");
    assert!(!r.join("ro-dir/x").exists());
    assert!(r.join("rw-dir/x").exists());
}

#[test]
fn domainname_needs_and_uses_uts_namespace() {
    let host = std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
    let mut c = Ct::new(&["cat", "/proc/sys/kernel/domainname"]);
    c.config["domainname"] = "example.org".into();
    c.save();
    assert_eq!(run_ok(&c), "example.org\n");
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap(), host);
    // Without a uts namespace of its own it is refused, naming the field.
    let mut c = Ct::new(&["true"]);
    c.config["domainname"] = "example.org".into();
    c.config.as_object_mut().unwrap().remove("hostname");
    remove_namespace(&mut c, "uts");
    c.save();
    let (ok, err) = c.create();
    assert!(!ok);
    assert!(err.contains("domainname"), "{err}");
    assert_nothing_left(&c);
}

#[test]
fn readonly_root_with_no_pivot() {
    let script = "touch /x 2>/dev/null && echo root-rw || echo root-ro; touch /dev/shm/y && echo shm-rw";
    let run_no_pivot = |ro: bool| {
        let mut c = Ct::new(&["sh", "-c", script]);
        c.config["root"]["readonly"] = ro.into();
        c.save();
        let b = c.bundle.path().to_str().unwrap().to_string();
        let out = c.rt(&["run", "--no-pivot", "--bundle", &b, &c.id]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_nothing_left(&c);
        (stdout(&out), c.rootfs().join("x").exists())
    };
    assert_eq!(run_no_pivot(true), ("root-ro\nshm-rw\n".to_string(), false));
    // Positive control.
    assert_eq!(run_no_pivot(false), ("root-rw\nshm-rw\n".to_string(), true));
}
