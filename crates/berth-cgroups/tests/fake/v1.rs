//! v1 driver (Legacy and Hybrid hosts) on fake trees.

use std::path::PathBuf;
use std::process::Command;

use berth_cgroups::{Error, FreezerState, Mode};

use crate::tree::{Fake, V1Host};
use crate::{empty, err_contains, res};

/// Like this host: cpu and cpuacct apart, no hugetlb/net/rdma on v1, cgroup2 with hugetlb only.
fn host_like() -> Fake {
    Fake::v1(V1Host {
        comount_cpu: false,
        full: false,
        unified: Some("hugetlb"),
        own_memory: "/process_api/abc",
    })
}

/// Every v1 controller, cpu,cpuacct co-mounted, no cgroup2.
fn full_legacy() -> Fake {
    Fake::v1(V1Host {
        comount_cpu: true,
        full: true,
        unified: None,
        own_memory: "/",
    })
}

/// A created and kernel-populated cgroup "/c1".
fn ready(f: &Fake) -> berth_cgroups::Cgroup {
    let cg = f.cgroup(Some("/c1"), "c1");
    cg.create().unwrap();
    f.populate();
    cg
}

#[test]
fn resolves_absolute_relative_and_default_paths() {
    let f = host_like();
    let abs = f.cgroup(Some("/berth/c1"), "c1");
    assert_eq!(abs.mode(), Mode::Hybrid);
    assert_eq!(abs.path("memory"), Some(f.path("memory/berth/c1").as_path()));
    assert_eq!(abs.path("name=systemd"), Some(f.path("systemd/berth/c1").as_path()));
    assert_eq!(abs.unified_path(), Some(f.path("unified/berth/c1").as_path()));

    // Relative paths and the default go below our own cgroup, per hierarchy.
    let rel = f.cgroup(Some("berth/c1"), "c1");
    assert_eq!(
        rel.path("memory"),
        Some(f.path("memory/process_api/abc/berth/c1").as_path())
    );
    assert_eq!(rel.path("cpu"), Some(f.path("cpu/berth/c1").as_path()));
    let def = f.cgroup(None, "c1");
    assert_eq!(def.path("memory"), Some(f.path("memory/process_api/abc/c1").as_path()));
    assert_eq!(def.unified_path(), Some(f.path("unified/c1").as_path()));

    let names: Vec<String> = def.mount_sources().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd", "unified"]
    );

    let e = berth_cgroups::Cgroup::new_with(
        &f.root,
        Some("system.slice:berth:c1"),
        "c1",
        &f.proc_cgroup,
        &f.mountinfo,
    );
    err_contains(e, &["cgroupsPath=system.slice:berth:c1", "systemd"]);
}

#[test]
fn comounted_hierarchies_share_one_dir() {
    let f = full_legacy();
    let cg = f.cgroup(Some("/c1"), "c1");
    assert_eq!(cg.mode(), Mode::Legacy);
    assert_eq!(cg.path("cpu"), cg.path("cpuacct"));
    assert_eq!(cg.path("cpu"), Some(f.path("cpu,cpuacct/c1").as_path()));
    assert_eq!(cg.unified_path(), None);
    let src = cg.mount_sources();
    assert!(src.contains(&("cpu,cpuacct".to_string(), f.path("cpu,cpuacct/c1"))));
    assert!(src.contains(&("net_cls,net_prio".to_string(), f.path("net_cls,net_prio/c1"))));
}

#[test]
fn serializes_and_round_trips() {
    let f = host_like();
    let cg = f.cgroup(None, "c1");
    let json = serde_json::to_string(&cg).unwrap();
    let back: berth_cgroups::Cgroup = serde_json::from_str(&json).unwrap();
    assert_eq!(back, cg);
}

#[test]
fn create_makes_every_dir_and_fills_cpuset() {
    let f = host_like();
    let cg = f.cgroup(Some("/a/c1"), "c1");
    cg.create().unwrap();
    for (_, dir) in cg.mount_sources() {
        assert!(dir.is_dir(), "{} missing", dir.display());
    }
    // On a real kernel the cpuset files exist from mkdir on; here the fake kernel adds them and a
    // second (idempotent) create copies the parent's cpus/mems down, level by level.
    f.populate();
    cg.create().unwrap();
    assert_eq!(f.read("cpuset/a/cpuset.cpus"), "0-3");
    assert_eq!(f.read("cpuset/a/c1/cpuset.cpus"), "0-3");
    assert_eq!(f.read("cpuset/a/c1/cpuset.mems"), "0");
}

#[test]
fn failed_create_removes_what_it_made() {
    let f = host_like();
    // A file where pids needs a directory: mkdir fails there, after cpu..blkio were made.
    f.write("pids/a", "not a dir");
    let cg = f.cgroup(Some("/a/c1"), "c1");
    err_contains(cg.create(), &["mkdir", "pids/a/c1"]);
    for h in ["cpu", "cpuacct", "memory", "devices", "blkio"] {
        assert!(!f.path(h).join("a").exists(), "{h}/a left behind");
    }
    assert!(!f.path("unified/a").exists());
}

#[test]
fn memory_limits_and_order() {
    let f = full_legacy();
    let cg = ready(&f);
    cg.apply(&res(
        r#"{"memory":{"limit":67108864,"reservation":33554432,"swap":134217728,"swappiness":10,"disableOOMKiller":true,"kernelTCP":1048576,"kernel":4096}}"#,
    ))
    .unwrap();
    assert_eq!(f.read("memory/c1/memory.limit_in_bytes"), "67108864");
    assert_eq!(f.read("memory/c1/memory.memsw.limit_in_bytes"), "134217728");
    assert_eq!(f.read("memory/c1/memory.soft_limit_in_bytes"), "33554432");
    assert_eq!(f.read("memory/c1/memory.swappiness"), "10");
    assert_eq!(f.read("memory/c1/memory.oom_control"), "1");
    assert_eq!(f.read("memory/c1/memory.kmem.tcp.limit_in_bytes"), "1048576");
    // kernel is deprecated: without memory.kmem.limit_in_bytes it is ignored.
    assert!(!f.path("memory/c1/memory.kmem.limit_in_bytes").exists());

    // Unlimited memory with swap unset lifts memory+swap too.
    cg.apply(&res(r#"{"memory":{"limit":-1}}"#)).unwrap();
    assert_eq!(f.read("memory/c1/memory.limit_in_bytes"), "-1");
    assert_eq!(f.read("memory/c1/memory.memsw.limit_in_bytes"), "-1");
}

#[test]
fn memory_errors_name_field_and_value_and_write_nothing() {
    let f = full_legacy();
    let cg = ready(&f);
    err_contains(
        cg.apply(&res(r#"{"memory":{"limit":200000,"swap":100000}}"#)),
        &["memory.swap=100000", ">= memory.limit"],
    );
    // checkBeforeUpdate: usage (4096 in the fake) above the new limit.
    err_contains(
        cg.apply(&res(r#"{"memory":{"limit":4000,"checkBeforeUpdate":true}}"#)),
        &["memory.limit=4000", "below current usage 4096"],
    );
    err_contains(
        cg.apply(&res(r#"{"memory":{"swappiness":150}}"#)),
        &["memory.swappiness=150"],
    );
    std::fs::remove_file(f.path("memory/c1/memory.kmem.tcp.limit_in_bytes")).unwrap();
    err_contains(
        cg.apply(&res(r#"{"memory":{"kernelTCP":1}}"#)),
        &["memory.kernelTCP=1", "not supported"],
    );
    assert_eq!(f.read("memory/c1/memory.limit_in_bytes"), "9223372036854771712");
}

#[test]
fn cpu_and_cpuset() {
    let f = full_legacy();
    let cg = ready(&f);
    cg.apply(&res(
        r#"{"cpu":{"shares":512,"quota":50000,"period":200000,"burst":1000,"realtimeRuntime":950,"realtimePeriod":1000,"idle":1,"cpus":"1-2","mems":"0"}}"#,
    ))
    .unwrap();
    let d = "cpu,cpuacct/c1";
    assert_eq!(f.read(&format!("{d}/cpu.shares")), "512");
    assert_eq!(f.read(&format!("{d}/cpu.cfs_quota_us")), "50000");
    assert_eq!(f.read(&format!("{d}/cpu.cfs_period_us")), "200000");
    assert_eq!(f.read(&format!("{d}/cpu.cfs_burst_us")), "1000");
    assert_eq!(f.read(&format!("{d}/cpu.rt_runtime_us")), "950");
    assert_eq!(f.read(&format!("{d}/cpu.rt_period_us")), "1000");
    assert_eq!(f.read(&format!("{d}/cpu.idle")), "1");
    assert_eq!(f.read("cpuset/c1/cpuset.cpus"), "1-2");
    assert_eq!(f.read("cpuset/c1/cpuset.mems"), "0");

    // An update writes only what it sets.
    cg.apply(&res(r#"{"cpu":{"quota":-1}}"#)).unwrap();
    assert_eq!(f.read(&format!("{d}/cpu.cfs_quota_us")), "-1");
    assert_eq!(f.read(&format!("{d}/cpu.shares")), "512");
    assert_eq!(f.read(&format!("{d}/cpu.cfs_period_us")), "200000");
}

#[test]
fn pids_limit() {
    let f = host_like();
    let cg = ready(&f);
    cg.apply(&res(r#"{"pids":{"limit":7}}"#)).unwrap();
    assert_eq!(f.read("pids/c1/pids.max"), "7");
    cg.apply(&res(r#"{"pids":{"limit":0}}"#)).unwrap();
    assert_eq!(f.read("pids/c1/pids.max"), "max");
    cg.apply(&res(r#"{"pids":{"limit":-1}}"#)).unwrap();
    assert_eq!(f.read("pids/c1/pids.max"), "max");
}

#[test]
fn blkio_weights_and_throttles() {
    let f = full_legacy();
    let cg = ready(&f);
    cg.apply(&res(r#"{"blockIO":{"weight":300,"leafWeight":200,
            "weightDevice":[{"major":8,"minor":0,"weight":400,"leafWeight":100}],
            "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576},{"major":8,"minor":16,"rate":0}],
            "throttleWriteIOPSDevice":[{"major":8,"minor":0,"rate":100}]}}"#))
        .unwrap();
    assert_eq!(f.read("blkio/c1/blkio.weight"), "300");
    assert_eq!(f.read("blkio/c1/blkio.leaf_weight"), "200");
    assert_eq!(f.read("blkio/c1/blkio.weight_device"), "8:0 400\n");
    assert_eq!(f.read("blkio/c1/blkio.leaf_weight_device"), "8:0 100\n");
    assert_eq!(
        f.read("blkio/c1/blkio.throttle.read_bps_device"),
        "8:0 1048576\n8:16 0\n"
    );
    assert_eq!(f.read("blkio/c1/blkio.throttle.write_iops_device"), "8:0 100\n");
    err_contains(
        cg.apply(&res(r#"{"blockIO":{"weight":5}}"#)),
        &["blockIO.weight=5", "10-1000"],
    );

    // This host's blkio has no weight files at all.
    let f = host_like();
    let cg = ready(&f);
    err_contains(
        cg.apply(&res(r#"{"blockIO":{"weight":300}}"#)),
        &["blockIO.weight=300", "blkio.bfq.weight or blkio.weight"],
    );
}

#[test]
fn devices_deny_all_then_rules_in_order() {
    let f = host_like();
    let cg = ready(&f);
    cg.apply(&res(r#"{"devices":[{"allow":false,"access":"rwm"},
            {"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},
            {"allow":true,"type":"c","major":136,"access":"rw"},
            {"allow":false,"type":"c","major":1,"minor":3,"access":"w"},
            {"allow":true,"type":"b","major":8,"minor":0}]}"#))
        .unwrap();
    assert_eq!(f.read("devices/c1/devices.deny"), "a\na *:* rwm\nc 1:3 w\n");
    assert_eq!(f.read("devices/c1/devices.allow"), "c 1:3 rwm\nc 136:* rw\nb 8:0 rwm\n");

    // A bad rule is refused before "deny all" is written.
    let f = host_like();
    let cg = ready(&f);
    err_contains(
        cg.apply(&res(
            r#"{"devices":[{"allow":true,"type":"c","major":1,"minor":3,"access":"rwx"}]}"#,
        )),
        &["devices.access=rwx"],
    );
    assert_eq!(f.read("devices/c1/devices.deny"), "");
}

#[test]
fn hugetlb_on_v1_and_on_the_hybrid_cgroup2_mount() {
    let f = full_legacy();
    let cg = ready(&f);
    cg.apply(&res(
        r#"{"hugepageLimits":[{"pageSize":"2MB","limit":4194304},{"pageSize":"1GB","limit":0}]}"#,
    ))
    .unwrap();
    assert_eq!(f.read("hugetlb/c1/hugetlb.2MB.limit_in_bytes"), "4194304");
    assert_eq!(f.read("hugetlb/c1/hugetlb.2MB.rsvd.limit_in_bytes"), "4194304");
    assert_eq!(f.read("hugetlb/c1/hugetlb.1GB.limit_in_bytes"), "0");
    err_contains(
        cg.apply(&res(
            r#"{"hugepageLimits":[{"pageSize":"2MB","limit":1},{"pageSize":"16KB","limit":1}]}"#,
        )),
        &["hugepageLimits.pageSize=16KB", "hugetlb.16KB.limit_in_bytes"],
    );
    assert_eq!(
        f.read("hugetlb/c1/hugetlb.2MB.limit_in_bytes"),
        "4194304",
        "nothing written on error"
    );

    // This host: hugetlb lives only on cgroup2, which create() enabled for the container.
    let f = host_like();
    let cg = ready(&f);
    assert!(f.read("unified/cgroup.subtree_control").contains("+hugetlb"));
    cg.apply(&res(
        r#"{"hugepageLimits":[{"pageSize":"2MB","limit":-1},{"pageSize":"1GB","limit":1073741824}]}"#,
    ))
    .unwrap();
    assert_eq!(f.read("unified/c1/hugetlb.2MB.max"), "max");
    assert_eq!(f.read("unified/c1/hugetlb.1GB.max"), "1073741824");
    let s = cg.stats().unwrap();
    assert_eq!(s.hugetlb["2MB"].usage, 2097152);
    assert_eq!(s.hugetlb["2MB"].failcnt, 4);
}

#[test]
fn network_and_rdma() {
    let f = full_legacy();
    let cg = ready(&f);
    cg.apply(&res(
        r#"{"network":{"classID":1048577,"priorities":[{"name":"eth0","priority":5},{"name":"lo","priority":2}]},
            "rdma":{"mlx5_0":{"hcaHandles":3,"hcaObjects":10000}}}"#,
    ))
    .unwrap();
    assert_eq!(f.read("net_cls,net_prio/c1/net_cls.classid"), "1048577");
    assert_eq!(f.read("net_cls,net_prio/c1/net_prio.ifpriomap"), "lo 0\neth0 5\nlo 2\n");
    assert_eq!(f.read("rdma/c1/rdma.max"), "mlx5_0 hca_handle=3 hca_object=10000\n");
}

#[test]
fn missing_controllers_are_named_and_nothing_is_written() {
    let f = host_like();
    let cg = ready(&f);
    let e = err_contains(
        cg.apply(&res(r#"{"pids":{"limit":5},"network":{"classID":1}}"#)),
        &["net_cls"],
    );
    assert!(matches!(e, Error::MissingController(ref c) if c == "net_cls"));
    assert_eq!(f.read("pids/c1/pids.max"), "max");
    let e = cg.apply(&res(r#"{"rdma":{"mlx5_0":{"hcaHandles":1}}}"#)).unwrap_err();
    assert!(matches!(e, Error::MissingController(ref c) if c == "rdma"), "{e}");
    // Requests without values are fine.
    cg.apply(&res(
        r#"{"network":{},"rdma":{},"hugepageLimits":[],"memory":{},"cpu":{"cpus":""}}"#,
    ))
    .unwrap();
    cg.apply(&empty()).unwrap();
    err_contains(
        cg.apply(&res(r#"{"unified":{"memory.high":"1000"}}"#)),
        &["unified=memory.high", "cgroup v2 host"],
    );
}

#[test]
fn add_pid_joins_every_hierarchy_and_hybrid_cgroup2() {
    let f = host_like();
    let cg = ready(&f);
    cg.add_pid(4242).unwrap();
    for (name, dir) in cg.mount_sources() {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
        assert_eq!(procs, "4242", "{name}");
    }
    assert_eq!(f.read("unified/c1/cgroup.procs"), "4242");
    // Processes in child cgroups count too.
    std::fs::create_dir(f.path("pids/c1/sub")).unwrap();
    f.write("pids/c1/sub/cgroup.procs", "7\n8\n");
    assert_eq!(cg.pids().unwrap(), [7, 8, 4242]);
}

/// The process joins itself: "0" to each v1 `tasks` (the calling thread; no threadgroup
/// lock) and, unless it was born there, to the hybrid cgroup2 cgroup's `cgroup.procs`.
#[test]
fn join_self_writes_tasks_and_skips_the_cgroup2_it_was_born_in() {
    let f = host_like();
    let cg = ready(&f);
    cg.join_self(true).unwrap();
    for (name, dir) in cg.mount_sources().into_iter().filter(|(n, _)| n != "unified") {
        assert_eq!(std::fs::read_to_string(dir.join("tasks")).unwrap(), "0", "{name}");
    }
    assert!(!f.path("unified/c1/cgroup.procs").exists() || f.read("unified/c1/cgroup.procs").is_empty());
    cg.join_self(false).unwrap();
    assert_eq!(f.read("unified/c1/cgroup.procs"), "0");
}

#[test]
fn freezer_states() {
    let f = host_like();
    let cg = ready(&f);
    cg.freeze(FreezerState::Frozen).unwrap();
    assert_eq!(f.read("freezer/c1/freezer.state"), "FROZEN");
    // FROZEN only because an ancestor is: the container itself is not paused.
    assert_eq!(cg.freezer_state().unwrap(), FreezerState::Thawed);
    f.write("freezer/c1/freezer.self_freezing", "1\n");
    assert_eq!(cg.freezer_state().unwrap(), FreezerState::Frozen);
    cg.freeze(FreezerState::Thawed).unwrap();
    assert_eq!(cg.freezer_state().unwrap(), FreezerState::Thawed);
    f.write("freezer/c1/freezer.state", "BOGUS");
    err_contains(cg.freezer_state(), &["freezer.state=BOGUS"]);
}

#[test]
fn stats_and_oom_count() {
    let f = full_legacy();
    let cg = ready(&f);
    let s = cg.stats().unwrap();
    assert_eq!(s.cpu.usage_total, 1000);
    assert_eq!(s.cpu.percpu_usage, [600, 400]);
    assert_eq!((s.cpu.usage_user, s.cpu.usage_kernel), (700, 300));
    assert_eq!(s.cpu.throttling_throttled_periods, 1);
    assert_eq!(s.memory.usage.usage, 4096);
    assert_eq!(s.memory.usage.max_usage, 8192);
    assert_eq!(s.memory.swap_usage.usage, 5000);
    assert_eq!(s.memory.cache, 100);
    assert_eq!(s.memory.raw["rss"], 200);
    assert_eq!(s.memory.oom_kill, 2);
    assert_eq!((s.pids.current, s.pids.limit), (1, 0));
    assert_eq!(s.blkio.io_service_bytes_recursive.len(), 2);
    assert_eq!(s.hugetlb["2MB"].max_usage, 4194304);
    assert_eq!(cg.oom_kill_count().unwrap(), 2);
}

#[test]
fn destroy_removes_leaf_first_everywhere_and_is_idempotent() {
    let f = host_like();
    let cg = ready(&f);
    std::fs::create_dir_all(f.path("memory/c1/sub/subsub")).unwrap();
    f.strip();
    cg.destroy().unwrap();
    let dirs: Vec<PathBuf> = cg.mount_sources().into_iter().map(|(_, d)| d).collect();
    for d in &dirs {
        assert!(!d.exists(), "{} left", d.display());
    }
    cg.destroy().unwrap();
    // A cgroup that still has files (a busy one, for the fake) is reported with its path.
    let cg = ready(&f);
    err_contains(cg.destroy(), &["rmdir", "c1"]);
}

#[test]
fn kill_all_freezes_signals_and_thaws() {
    let f = host_like();
    let cg = ready(&f);
    let mut child = Command::new("sleep").arg("100").spawn().unwrap();
    f.write("pids/c1/cgroup.procs", &child.id().to_string());
    cg.kill_all(libc::SIGTERM).unwrap();
    let st = child.wait().unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&st), Some(libc::SIGTERM));
    assert_eq!(f.read("freezer/c1/freezer.state"), "THAWED");
    // Hybrid SIGKILL goes through cgroup.kill, then what is left in v1 gets it directly.
    let mut child = Command::new("sleep").arg("100").spawn().unwrap();
    f.write("pids/c1/cgroup.procs", &child.id().to_string());
    cg.kill_all(libc::SIGKILL).unwrap();
    let st = child.wait().unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&st), Some(libc::SIGKILL));
    assert_eq!(f.read("unified/c1/cgroup.kill"), "1");
    err_contains(cg.kill_all(12345), &["signal=12345"]);
}

#[test]
fn no_pids_limit_needs_no_pids_controller() {
    let f = full_legacy();
    let mountinfo: Vec<&str> = f.mountinfo.lines().filter(|l| !l.ends_with("rw,pids")).collect();
    let cg =
        berth_cgroups::Cgroup::new_with(&f.root, Some("/c1"), "c1", &f.proc_cgroup, &mountinfo.join("\n")).unwrap();
    assert_eq!(cg.path("pids"), None);
    cg.create().unwrap();
    f.populate();
    cg.apply(&res(r#"{"pids":{"limit":0}}"#)).unwrap();
    let e = cg.apply(&res(r#"{"pids":{"limit":3}}"#)).unwrap_err();
    assert!(matches!(e, Error::MissingController(ref c) if c == "pids"), "{e}");
}
