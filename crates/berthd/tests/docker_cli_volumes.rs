//! Volumes, bind mounts and tmpfs through the docker CLI (issue 5's storage part).

mod common;

use common::Daemon;

#[test]
fn named_volumes_persist_and_fill_from_the_image() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    d.ok(&["volume", "create", "--label", "team=a", "data"]);
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "data");
    assert_eq!(
        d.ok(&["volume", "inspect", "-f", "{{.Driver}} {{.Labels.team}}", "data"]),
        "local a"
    );
    d.ok(&[
        "run",
        "--name",
        "ww",
        "-v",
        "data:/data",
        "busybox",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    d.ok(&["rm", "ww"]);
    assert_eq!(
        d.ok(&["run", "--rm", "-v", "data:/data", "busybox", "cat", "/data/f"]),
        "kept"
    );
    // A new volume over a path the image has is filled with the image's files.
    let o = d.ok(&[
        "run",
        "--rm",
        "-v",
        "etcvol:/etc",
        "busybox",
        "sh",
        "-c",
        "head -1 /etc/passwd",
    ]);
    assert!(o.starts_with("root:"), "{o}");
    // ... but nocopy leaves it empty (positive control of the copy above).
    let o = d.ok(&["run", "--rm", "-v", "empty:/etc:nocopy", "busybox", "ls", "-A", "/etc"]);
    assert_eq!(o, "");
    // Inspect shows the volume mount.
    d.ok(&["create", "--name", "mm", "-v", "data:/data:ro", "busybox", "true"]);
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.RW}}{{end}}",
            "mm"
        ]),
        "volume data /data false"
    );
    // In use: refused, even forced; after the container goes, removed.
    assert!(!d.docker(&["volume", "rm", "data"]).status.success());
    assert!(!d.docker(&["volume", "rm", "-f", "data"]).status.success());
    d.ok(&["rm", "mm"]);
    d.ok(&["volume", "rm", "data"]);
    assert!(!d.docker(&["volume", "inspect", "data"]).status.success());
    // A missing volume: an error, unless forced (as Docker).
    assert!(!d.docker(&["volume", "rm", "data"]).status.success());
    d.ok(&["volume", "rm", "-f", "data"]);
    // A read-only volume refuses writes.
    let o = d.docker(&["run", "--rm", "-v", "etcvol:/x:ro", "busybox", "touch", "/x/new"]);
    assert!(!o.status.success());
}

#[test]
fn anonymous_volumes_rm_v_and_prune() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    d.ok(&[
        "run",
        "--name",
        "a1",
        "--mount",
        "type=volume,target=/anon",
        "busybox",
        "touch",
        "/anon/x",
    ]);
    d.ok(&[
        "run",
        "--name",
        "a2",
        "--mount",
        "type=volume,target=/anon",
        "busybox",
        "true",
    ]);
    assert_eq!(d.ok(&["volume", "ls", "-q"]).lines().count(), 2);
    // rm without -v keeps the volume (positive control), rm -v removes it.
    d.ok(&["rm", "a1"]);
    assert_eq!(d.ok(&["volume", "ls", "-q"]).lines().count(), 2);
    d.ok(&["rm", "-v", "a2"]);
    assert_eq!(d.ok(&["volume", "ls", "-q"]).lines().count(), 1);
    // prune removes the unused anonymous one; a named unused one needs --all.
    d.ok(&["volume", "create", "named"]);
    d.ok(&["volume", "prune", "-f"]);
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "named");
    d.ok(&["volume", "prune", "-f", "--all"]);
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "");
    // --rm takes its anonymous volumes along.
    d.ok(&["run", "--rm", "--mount", "type=volume,target=/t", "busybox", "true"]);
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "");
    // --volumes-from.
    d.ok(&[
        "run",
        "--name",
        "src",
        "-v",
        "shared:/shared",
        "busybox",
        "sh",
        "-c",
        "echo s > /shared/f",
    ]);
    assert_eq!(
        d.ok(&["run", "--rm", "--volumes-from", "src", "busybox", "cat", "/shared/f"]),
        "s"
    );
}

#[test]
fn binds_tmpfs_and_option_backed_volumes() {
    let d = Daemon::start();
    d.import_busybox("busybox");
    let host = d.dir.path().join("hostdir");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("in"), "from-host").unwrap();
    let h = host.to_str().unwrap();
    assert_eq!(
        d.ok(&["run", "--rm", "-v", &format!("{h}:/h"), "busybox", "cat", "/h/in"]),
        "from-host"
    );
    d.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{h}:/h"),
        "busybox",
        "sh",
        "-c",
        "echo back > /h/out",
    ]);
    assert_eq!(std::fs::read_to_string(host.join("out")).unwrap().trim(), "back");
    // :ro refuses writes (the rw write above is the positive control).
    assert!(!d
        .docker(&["run", "--rm", "-v", &format!("{h}:/h:ro"), "busybox", "touch", "/h/x"])
        .status
        .success());
    let ro = format!("type=bind,source={h},target=/h,readonly");
    assert!(!d
        .docker(&["run", "--rm", "--mount", &ro, "busybox", "touch", "/h/x"])
        .status
        .success());
    // -v creates a missing host directory; --mount refuses it.
    let missing = d.dir.path().join("made-by-v");
    d.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/m", missing.display()),
        "busybox",
        "true",
    ]);
    assert!(missing.is_dir());
    let gone = format!("type=bind,source={}/nope,target=/m", h);
    let o = d.docker(&["run", "--rm", "--mount", &gone, "busybox", "true"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not exist"));
    // tmpfs, by flag and by --mount.
    let df = d.ok(&["run", "--rm", "--tmpfs", "/t:size=1m", "busybox", "df", "-k", "/t"]);
    assert!(df.contains("tmpfs") && df.contains("1024"), "{df}");
    let df = d.ok(&[
        "run",
        "--rm",
        "--mount",
        "type=tmpfs,target=/t,tmpfs-size=2097152",
        "busybox",
        "df",
        "-k",
        "/t",
    ]);
    assert!(df.contains("2048"), "{df}");
    // A tmpfs-backed named volume.
    d.ok(&[
        "volume",
        "create",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "--opt",
        "o=size=3m",
        "tv",
    ]);
    let df = d.ok(&["run", "--rm", "-v", "tv:/v", "busybox", "df", "-k", "/v"]);
    assert!(df.contains("3072"), "{df}");
    d.ok(&["volume", "rm", "tv"]);
}
