//! v2 driver (Unified hosts) on fake trees. This is the main test of the v2 driver on a machine
//! without a v2 host; the real-kernel parts run in tests/real_cgroups.rs on a cgroup2 mount.

use std::process::Command;

use berth_cgroups::{Error, FreezerState, Mode};

use crate::tree::Fake;
use crate::{err_contains, res};

const ALL: &str = "cpuset cpu io memory hugetlb pids rdma misc";

/// A pure v2 host where we run in /user.slice/session.scope; the container cgroup /c1 is created
/// and populated with every controller.
fn ready() -> (Fake, berth_cgroups::Cgroup) {
    let f = Fake::v2(ALL, "/user.slice/session.scope", &[]);
    let cg = f.cgroup(Some("/c1"), "c1");
    cg.create().unwrap();
    f.populate();
    (f, cg)
}

fn host_swappiness() -> u64 {
    std::fs::read_to_string("/proc/sys/vm/swappiness")
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn resolves_paths_and_mount_source() {
    let f = Fake::v2(ALL, "/user.slice/session.scope", &[]);
    let cg = f.cgroup(None, "c1");
    assert_eq!(cg.mode(), Mode::Unified);
    assert_eq!(cg.unified_path(), Some(f.path("user.slice/session.scope/c1").as_path()));
    assert_eq!(cg.path("memory"), cg.unified_path());
    assert_eq!(
        cg.mount_sources(),
        [(String::new(), f.path("user.slice/session.scope/c1"))]
    );
    let cg = f.cgroup(Some("machine/c1"), "c1");
    assert_eq!(
        cg.unified_path(),
        Some(f.path("user.slice/session.scope/machine/c1").as_path())
    );
    let cg = f.cgroup(Some("/machine/c1"), "c1");
    assert_eq!(cg.unified_path(), Some(f.path("machine/c1").as_path()));
}

#[test]
fn create_enables_only_available_controllers_in_each_ancestor() {
    // /machine exists and was given only cpu, memory and pids by the root.
    let f = Fake::v2(ALL, "/", &[("machine", "cpu memory pids")]);
    f.write("cgroup.subtree_control", "cpu memory pids");
    let cg = f.cgroup(Some("/machine/c1"), "c1");
    cg.create().unwrap();
    assert!(f.path("machine/c1").is_dir());
    // The root enables what it still lacks; /machine enables all it has.
    assert_eq!(f.read("cgroup.subtree_control"), "+cpuset +io +hugetlb +rdma +misc");
    assert_eq!(f.read("machine/cgroup.subtree_control"), "+cpu +memory +pids");
    f.populate();
    assert_eq!(f.read("machine/c1/cgroup.controllers"), "cpu memory pids");
    // io is not enabled for /machine, so it cannot reach the container.
    let e = cg.apply(&res(r#"{"blockIO":{"weight":100}}"#)).unwrap_err();
    assert!(matches!(e, Error::MissingController(ref c) if c == "io"), "{e}");
}

#[test]
fn create_rolls_back_on_failure() {
    let f = Fake::v2(ALL, "/", &[]);
    f.write("a", "not a dir");
    let cg = f.cgroup(Some("/a/b"), "b");
    err_contains(cg.create(), &["mkdir", "a/b"]);
    let f = Fake::v2(ALL, "/", &[]);
    std::fs::create_dir_all(f.path("x/y")).unwrap();
    std::fs::write(f.path("x/y/z"), "").unwrap();
    let cg = f.cgroup(Some("/x/new/deeper"), "deeper");
    cg.create().unwrap();
    assert!(f.path("x/new/deeper").is_dir());
}

#[test]
fn memory_conversions() {
    let (f, cg) = ready();
    cg.apply(&res(
        r#"{"memory":{"limit":104857600,"swap":209715200,"reservation":52428800}}"#,
    ))
    .unwrap();
    assert_eq!(f.read("c1/memory.max"), "104857600");
    // memory+swap in the spec, swap alone in memory.swap.max
    assert_eq!(f.read("c1/memory.swap.max"), "104857600");
    assert_eq!(f.read("c1/memory.low"), "52428800");

    cg.apply(&res(r#"{"memory":{"limit":104857600,"swap":104857600}}"#))
        .unwrap();
    assert_eq!(f.read("c1/memory.swap.max"), "0", "swap == limit turns swap off");
    cg.apply(&res(r#"{"memory":{"limit":-1}}"#)).unwrap();
    assert_eq!(f.read("c1/memory.max"), "max");
    assert_eq!(f.read("c1/memory.swap.max"), "max");
    // An update of swap alone converts against the limit in force.
    f.write("c1/memory.max", "1000");
    cg.apply(&res(r#"{"memory":{"swap":3000}}"#)).unwrap();
    assert_eq!(f.read("c1/memory.swap.max"), "2000");
    assert_eq!(f.read("c1/memory.max"), "1000");
    // kernel and kernelTCP have no v2 files and are ignored; swappiness at the default is fine.
    let sw = host_swappiness();
    cg.apply(&res(&format!(
        r#"{{"memory":{{"kernel":1,"kernelTCP":1,"swappiness":{sw},"useHierarchy":true}}}}"#
    )))
    .unwrap();
}

#[test]
fn memory_errors() {
    let (f, cg) = ready();
    let other = (host_swappiness() + 1) % 101;
    err_contains(
        cg.apply(&res(&format!(r#"{{"memory":{{"swappiness":{other}}}}}"#))),
        &[&format!("memory.swappiness={other}")],
    );
    err_contains(
        cg.apply(&res(r#"{"memory":{"disableOOMKiller":true}}"#)),
        &["memory.disableOOMKiller=true"],
    );
    err_contains(
        cg.apply(&res(r#"{"memory":{"limit":100,"swap":50}}"#)),
        &["memory.swap=50"],
    );
    err_contains(
        cg.apply(&res(r#"{"memory":{"limit":4000,"checkBeforeUpdate":true}}"#)),
        &["memory.limit=4000", "below current usage 4096"],
    );
    f.write("c1/memory.max", "max");
    err_contains(
        cg.apply(&res(r#"{"memory":{"swap":3000}}"#)),
        &["memory.swap=3000", "needs a memory limit"],
    );
    assert_eq!(f.read("c1/memory.swap.max"), "max");
}

#[test]
fn cpu_conversions() {
    let (f, cg) = ready();
    cg.apply(&res(
        r#"{"cpu":{"shares":1024,"quota":50000,"period":100000,"burst":2000,"idle":0,"cpus":"0-1","mems":"0"}}"#,
    ))
    .unwrap();
    assert_eq!(f.read("c1/cpu.weight"), "100");
    assert_eq!(f.read("c1/cpu.max"), "50000 100000");
    assert_eq!(f.read("c1/cpu.max.burst"), "2000");
    assert_eq!(f.read("c1/cpu.idle"), "0");
    assert_eq!(f.read("c1/cpuset.cpus"), "0-1");
    assert_eq!(f.read("c1/cpuset.mems"), "0");
    cg.apply(&res(r#"{"cpu":{"shares":2}}"#)).unwrap();
    assert_eq!(f.read("c1/cpu.weight"), "1");
    cg.apply(&res(r#"{"cpu":{"shares":262144}}"#)).unwrap();
    assert_eq!(f.read("c1/cpu.weight"), "10000");
    cg.apply(&res(r#"{"cpu":{"period":250000}}"#)).unwrap();
    assert_eq!(f.read("c1/cpu.max"), "max 250000");
    cg.apply(&res(r#"{"cpu":{"quota":-1,"period":100000}}"#)).unwrap();
    assert_eq!(f.read("c1/cpu.max"), "max 100000");
    cg.apply(&res(r#"{"cpu":{"quota":20000}}"#)).unwrap();
    assert_eq!(f.read("c1/cpu.max"), "20000");
    err_contains(
        cg.apply(&res(r#"{"cpu":{"realtimeRuntime":100}}"#)),
        &["cpu.realtimeRuntime=100"],
    );
}

#[test]
fn pids_io_hugetlb_rdma() {
    let (f, cg) = ready();
    cg.apply(&res(r#"{"pids":{"limit":64},
            "blockIO":{"weight":500,"weightDevice":[{"major":8,"minor":0,"weight":1000}],
              "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}],
              "throttleWriteBpsDevice":[{"major":8,"minor":0,"rate":0}],
              "throttleReadIOPSDevice":[{"major":8,"minor":16,"rate":100}],
              "throttleWriteIOPSDevice":[{"major":8,"minor":16,"rate":200}]},
            "hugepageLimits":[{"pageSize":"2MB","limit":8388608}],
            "rdma":{"mlx5_0":{"hcaHandles":2}}}"#))
        .unwrap();
    assert_eq!(f.read("c1/pids.max"), "64");
    assert_eq!(f.read("c1/io.weight"), "default 100\n4950\n8:0 10000\n");
    assert_eq!(
        f.read("c1/io.max"),
        "8:0 rbps=1048576\n8:0 wbps=max\n8:16 riops=100\n8:16 wiops=200\n"
    );
    assert_eq!(f.read("c1/hugetlb.2MB.max"), "8388608");
    assert_eq!(f.read("c1/hugetlb.2MB.rsvd.max"), "8388608");
    assert_eq!(f.read("c1/rdma.max"), "mlx5_0 hca_handle=2\n");
    err_contains(
        cg.apply(&res(r#"{"blockIO":{"leafWeight":100}}"#)),
        &["blockIO.leafWeight=100"],
    );
    err_contains(
        cg.apply(&res(r#"{"hugepageLimits":[{"pageSize":"3MB","limit":1}]}"#)),
        &["hugepageLimits.pageSize=3MB", "hugetlb.3MB.max"],
    );

    // BFQ takes the weight unconverted, and per-device weights when it lists a default.
    f.write("c1/io.bfq.weight", "default 100\n");
    cg.apply(&res(
        r#"{"blockIO":{"weight":500,"weightDevice":[{"major":8,"minor":0,"weight":700}]}}"#,
    ))
    .unwrap();
    assert_eq!(f.read("c1/io.bfq.weight"), "default 100\n500\n8:0 700\n");
}

#[test]
fn unified_keys_verbatim_and_errors_name_the_key() {
    let (f, cg) = ready();
    cg.apply(&res(
        r#"{"memory":{"limit":1000},"unified":{"memory.max":"2000","pids.max":"9"}}"#,
    ))
    .unwrap();
    // unified is written last, so it overrides the converted value.
    assert_eq!(f.read("c1/memory.max"), "2000");
    assert_eq!(f.read("c1/pids.max"), "9");
    err_contains(
        cg.apply(&res(r#"{"unified":{"memory.nonexistent":"1"}}"#)),
        &["unified[memory.nonexistent]=1", "no such file"],
    );
    err_contains(cg.apply(&res(r#"{"unified":{"../x":"1"}}"#)), &["unified[../x]"]);
    std::fs::remove_file(f.path("c1/memory.max")).unwrap();
    f.write("c1/cgroup.controllers", "cpu pids");
    err_contains(
        cg.apply(&res(r#"{"unified":{"memory.max":"1"}}"#)),
        &["unified[memory.max]=1", "controller memory is not enabled"],
    );
}

#[test]
fn missing_controllers_change_nothing() {
    let (f, cg) = ready();
    f.write("c1/cgroup.controllers", "cpu pids");
    let e = cg
        .apply(&res(r#"{"pids":{"limit":5},"memory":{"limit":1000}}"#))
        .unwrap_err();
    assert!(matches!(e, Error::MissingController(ref c) if c == "memory"), "{e}");
    assert_eq!(f.read("c1/pids.max"), "max");
    let e = cg.apply(&res(r#"{"network":{"classID":1}}"#)).unwrap_err();
    assert!(matches!(e, Error::MissingController(ref c) if c == "net_cls"), "{e}");
    let e = cg.apply(&res(r#"{"cpu":{"cpus":"0"}}"#)).unwrap_err();
    assert!(matches!(e, Error::MissingController(ref c) if c == "cpuset"), "{e}");
}

#[test]
fn devices_go_to_the_bpf_loader() {
    // A tmpfs directory is no cgroup, so the kernel refuses the BPF query/attach; what matters
    // here is that apply() on a Unified cgroup reaches the loader and names the directory.
    let (f, cg) = ready();
    err_contains(
        cg.apply(&res(r#"{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"}]}"#)),
        &["bpf(", &f.path("c1").display().to_string()],
    );
    // A rule the program cannot express fails before any syscall.
    err_contains(
        cg.apply(&res(r#"{"devices":[{"allow":true,"type":"p","access":"rwm"}]}"#)),
        &["devices.type=p"],
    );
}

#[test]
fn freeze_waits_for_cgroup_events() {
    let (f, cg) = ready();
    f.write("c1/cgroup.events", "populated 1\nfrozen 1\n");
    cg.freeze(FreezerState::Frozen).unwrap();
    assert_eq!(f.read("c1/cgroup.freeze"), "1");
    assert_eq!(cg.freezer_state().unwrap(), FreezerState::Frozen);
    f.write("c1/cgroup.events", "populated 1\nfrozen 0\n");
    cg.freeze(FreezerState::Thawed).unwrap();
    assert_eq!(cg.freezer_state().unwrap(), FreezerState::Thawed);
}

#[test]
fn kill_all_uses_cgroup_kill_or_signals_each() {
    let (f, cg) = ready();
    cg.kill_all(libc::SIGKILL).unwrap();
    assert_eq!(f.read("c1/cgroup.kill"), "1");
    // No cgroup.kill and no freezer (old kernel): every pid gets the signal directly.
    std::fs::remove_file(f.path("c1/cgroup.kill")).unwrap();
    std::fs::remove_file(f.path("c1/cgroup.freeze")).unwrap();
    let mut child = Command::new("sleep").arg("100").spawn().unwrap();
    f.write("c1/cgroup.procs", &child.id().to_string());
    cg.kill_all(libc::SIGKILL).unwrap();
    let st = child.wait().unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&st), Some(libc::SIGKILL));
}

#[test]
fn pids_stats_oom_and_destroy() {
    let (f, cg) = ready();
    cg.add_pid(11).unwrap();
    std::fs::create_dir_all(f.path("c1/sub/deeper")).unwrap();
    f.write("c1/sub/cgroup.procs", "12\n");
    f.write("c1/sub/deeper/cgroup.procs", "13\n");
    assert_eq!(cg.pids().unwrap(), [11, 12, 13]);

    let s = cg.stats().unwrap();
    assert_eq!(
        (s.cpu.usage_total, s.cpu.usage_user, s.cpu.usage_kernel),
        (5000, 3000, 2000)
    );
    assert_eq!(s.cpu.throttling_throttled_time, 7000);
    assert_eq!(s.memory.usage.usage, 4096);
    assert_eq!(s.memory.usage.limit, u64::MAX);
    assert_eq!(s.memory.usage.failcnt, 5);
    assert_eq!(s.memory.swap_usage.usage, 4196);
    assert_eq!(s.memory.cache, 20);
    assert_eq!(s.memory.oom_kill, 1);
    assert_eq!((s.pids.current, s.pids.limit), (2, 0));
    assert_eq!(s.blkio.io_service_bytes_recursive.len(), 2);
    assert_eq!(s.hugetlb["2MB"].failcnt, 4);
    assert_eq!(cg.oom_kill_count().unwrap(), 1);

    f.strip();
    cg.destroy().unwrap();
    assert!(!f.path("c1").exists());
    cg.destroy().unwrap();
}
