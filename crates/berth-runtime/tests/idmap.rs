//! Idmapped bind mounts (where the kernel allows them): host files owned by root appear
//! as root inside a container whose user namespace maps 0 → 100000.

mod common;

use common::Ct;
use serde_json::json;

fn userns_ct(mount_opts: &[&str]) -> (Ct, tempfile::TempDir) {
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("f"), "x").unwrap();
    let mut c = Ct::new(&["sh", "-c", "stat -c %u /data/f; id -u"]);
    // Root of the user namespace is 100000 on the host: it cannot create /data in a
    // rootfs owned by the host's root, so the image has it.
    std::fs::create_dir(c.rootfs().join("data")).unwrap();
    let mut ns = c.config["linux"]["namespaces"].as_array().unwrap().clone();
    ns.push(json!({"type": "user"}));
    c.config["linux"]["namespaces"] = ns.into();
    c.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    let mut mounts = c.config["mounts"].as_array().unwrap().clone();
    mounts.push(json!({"destination": "/data", "type": "bind", "source": host.path(), "options": mount_opts}));
    c.config["mounts"] = mounts.into();
    c.save();
    (c, host)
}

#[test]
fn idmapped_bind_shows_host_root_as_container_root() {
    let (c, _host) = userns_ct(&["rbind", "idmap"]);
    let (code, out, err) = c.run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "0\n0\n");
    // Positive control: without idmap the same file is unmapped (the overflow uid).
    let (c2, _h2) = userns_ct(&["rbind"]);
    let (code, out, err) = c2.run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "65534\n0\n");
}

#[test]
fn idmap_with_mount_mappings_and_without_userns() {
    // The mount's own mappings, written into the idmapping's user namespace as given (runc's
    // reading of the spec): file-system uid 0 shows as 4242 in a container without a user namespace.
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("f"), "x").unwrap();
    let mut c = Ct::new(&["stat", "-c", "%u", "/data/f"]);
    let mut mounts = c.config["mounts"].as_array().unwrap().clone();
    mounts.push(json!({
        "destination": "/data", "type": "bind", "source": host.path(), "options": ["rbind", "idmap"],
        "uidMappings": [{"containerID": 0, "hostID": 4242, "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": 4242, "size": 1}]
    }));
    c.config["mounts"] = mounts.into();
    c.save();
    let (code, out, err) = c.run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "4242");

    // Without any mapping the request is refused clearly and nothing is left.
    let host2 = tempfile::tempdir().unwrap();
    let mut c2 = Ct::new(&["true"]);
    let mut mounts = c2.config["mounts"].as_array().unwrap().clone();
    mounts.push(json!({"destination": "/data", "type": "bind", "source": host2.path(), "options": ["rbind", "idmap"]}));
    c2.config["mounts"] = mounts.into();
    c2.save();
    let (ok, err) = c2.create();
    assert!(!ok);
    assert!(err.contains("idmapped mount on /data"), "{err}");
    common::assert_nothing_left(&c2);
}
