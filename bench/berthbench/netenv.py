"""Host network state for the comparisons that run engines WITH networking
(network, engine-run-bridge, and berthd's default bridge in every engine
comparison): private bridge names, subnets and nftables tables per engine; a
snapshot of what the engines may change on the host (links, nftables tables,
iptables/ip6tables rules, chains and policies, forwarding and br_netfilter
sysctls); and putting it back afterwards:

- berthd: its bridge, `nft delete table inet <table>`, and the accept rules it
  keeps in another tool's `ip filter FORWARD` chain (comment `berth:<table>`);
- dockerd / podman (netavark): every iptables rule and chain that is there
  afterwards but was not before is deleted (a diff of `iptables -t T -S`), chain
  policies are set back, iptables-nft tables that did not exist before and are
  empty again are deleted, the bridges the bench made are deleted, and the
  sysctls are written back;
- then the state is read again and any difference from the snapshot is
  reported.

Names: bridges `bb<bench pid><engine letter><purpose letter>` (at most 15
bytes), nftables tables `berth_bench_<bench pid>_<purpose>`, so a later bench
run can sweep what a run that died left (sweep_orphans)."""

from __future__ import annotations

import ipaddress
import os
import re
import shlex

from .cleanup import pid_alive
from .util import log, sh, short, which

SYSCTLS = [
    "net/ipv4/ip_forward",
    "net/ipv6/conf/all/forwarding",
    "net/ipv4/conf/all/route_localnet",
    "net/bridge/bridge-nf-call-iptables",
    "net/bridge/bridge-nf-call-ip6tables",
    "net/bridge/bridge-nf-call-arptables",
]
IPT_TABLES = ("filter", "nat", "mangle", "raw")
BRIDGE_RE = re.compile(r"^bb(\d+)[bdp][a-z]$")
TABLE_RE = re.compile(r"^berth_bench_(\d+)_[a-z0-9_]+$")
EXC_RE = re.compile(r'comment "berth:(berth_bench_(\d+)_[a-z0-9_]+)".*# handle (\d+)')
# Docker's and Podman's default subnets: never handed out here.
AVOID = [ipaddress.ip_network(n) for n in ("172.17.0.0/16", "10.88.0.0/16")]


def bridge_name(pid: int, engine: str, purpose: str) -> str:
    """engine: 'b' berthd, 'd' dockerd, 'p' podman; purpose: one letter."""
    return f"bb{pid}{engine}{purpose}"


def table_name(pid: int, purpose: str) -> str:
    return f"berth_bench_{pid}_{purpose}"


# ------------------------------------------------------------------ reading

def read_sysctl(key: str) -> str | None:
    try:
        with open(f"/proc/sys/{key}") as f:
            return f.read().strip()
    except OSError:
        return None


def write_sysctl(key: str, value: str) -> str | None:
    try:
        with open(f"/proc/sys/{key}", "w") as f:
            f.write(value)
        return None
    except OSError as e:
        return f"write {key}={value}: {e}"


def links() -> dict[str, str]:
    """{name: kind} of every network interface ('' when ip says no kind)."""
    rc, out, _ = sh(["ip", "-o", "-d", "link", "show"], timeout=20)
    got = {}
    if rc != 0:
        return got
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) < 3:
            continue
        name = parts[1].strip().split("@")[0]
        m = re.search(r"\n?\s+(bridge|veth|vxlan|dummy|bond|macvlan|ipvlan|tun|ifb)\s", parts[2])
        got[name] = m.group(1) if m else ""
    return got


def nft_tables() -> list[str]:
    rc, out, _ = sh(["nft", "list", "tables"], timeout=20)
    if rc != 0:
        return []
    return sorted(l.strip()[len("table "):] for l in out.splitlines() if l.strip().startswith("table "))


def ipt_dump(cmd: str, table: str) -> list[str] | None:
    if which(cmd) is None:
        return None
    rc, out, _ = sh([cmd, "-w", "5", "-t", table, "-S"], timeout=30)
    if rc != 0:
        return None
    return [l.rstrip() for l in out.splitlines() if l.strip()]


def snapshot() -> dict:
    return {
        "links": links(),
        "nft_tables": nft_tables(),
        "iptables": {f"{cmd} -t {t}": ipt_dump(cmd, t) for cmd in ("iptables", "ip6tables") for t in IPT_TABLES},
        "sysctl": {k: read_sysctl(k) for k in SYSCTLS},
    }


def forward_policy() -> str | None:
    for l in ipt_dump("iptables", "filter") or []:
        if l.startswith("-P FORWARD "):
            return l.split()[2]
    return None


def used_networks() -> list:
    """Every IPv4 network routed or addressed on the host now."""
    nets = []
    rc, out, _ = sh(["ip", "-4", "route", "show", "table", "all"], timeout=20)
    for line in out.splitlines() if rc == 0 else []:
        tok = line.split()
        for t in tok[:3]:
            try:
                n = ipaddress.ip_network(t, strict=False)
            except ValueError:
                continue
            if n.version == 4 and n.prefixlen > 0:
                nets.append(n)
                break
    rc, out, _ = sh(["ip", "-4", "-o", "addr", "show"], timeout=20)
    for line in out.splitlines() if rc == 0 else []:
        m = re.search(r"\binet (\S+)", line)
        if m:
            nets.append(ipaddress.ip_interface(m.group(1)).network)
    return nets


class SubnetAllocator:
    """Free /24s in 10.192.0.0/11, starting at a place derived from the bench's
    pid (so two bench runs rarely collide), skipping anything routed or
    addressed on the host and Docker's/Podman's default subnets."""

    def __init__(self, pid: int):
        self.pid = pid
        self.taken: list = []

    def next(self) -> ipaddress.IPv4Network:
        used = used_networks() + AVOID + self.taken
        base = int(ipaddress.IPv4Address("10.192.0.0"))
        count = 32 * 256  # /24s in a /11
        start = (self.pid * 7) % count
        for i in range(count):
            n = ipaddress.ip_network((base + ((start + i) % count) * 256, 24))
            if not any(n.overlaps(u) for u in used):
                self.taken.append(n)
                return n
        raise RuntimeError("no free /24 in 10.192.0.0/11")


# ------------------------------------------------------------------ changing

def make_bridge(name: str, gateway_cidr: str) -> str | None:
    """Create a bridge with an address, up. Returns an error or None."""
    for argv in (["ip", "link", "add", name, "type", "bridge"],
                 ["ip", "addr", "add", gateway_cidr, "dev", name],
                 ["ip", "link", "set", name, "up"]):
        rc, _, err = sh(argv, timeout=20)
        if rc != 0:
            sh(["ip", "link", "del", name], timeout=20)
            return f"`{' '.join(argv)}` failed: {short(err, 200)}"
    return None


def delete_link(name: str) -> bool:
    if name not in links():
        return False
    sh(["ip", "link", "del", name], timeout=20)
    return True


def forward_exceptions() -> list[tuple[str, int]]:
    """[(berth table, nft handle)] of Berth's accept rules in `ip filter FORWARD`
    whose table is a bench table."""
    rc, out, _ = sh(["nft", "-a", "list", "chain", "ip", "filter", "FORWARD"], timeout=20)
    if rc != 0:
        return []
    got = []
    for line in out.splitlines():
        m = EXC_RE.search(line)
        if m:
            got.append((m.group(1), int(m.group(3))))
    return got


def forward_exception_count(table: str) -> int:
    return sum(1 for t, _ in forward_exceptions() if t == table)


def remove_berth_net(table: str, bridge: str) -> list[str]:
    """What a stopped berthd leaves on purpose (so that published ports survive a
    crash): its bridge, its nftables table, its FORWARD exceptions. Returns
    what was removed."""
    removed = []
    handles = [h for t, h in forward_exceptions() if t == table]
    if handles:
        script = "".join(f"delete rule ip filter FORWARD handle {h}\n" for h in handles)
        sh(["nft", "-f", "-"], input=script, timeout=20)
        removed.append(f"{len(handles)} FORWARD accept rule(s) `berth:{table}`")
    if f"inet {table}" in nft_tables():
        sh(["nft", "delete", "table", "inet", table], timeout=20)
        removed.append(f"nftables table inet {table}")
    if delete_link(bridge):
        removed.append(f"bridge {bridge}")
    return removed


def sweep_orphans(me: int | None = None) -> list[str]:
    """Bridges, nftables tables and FORWARD exceptions named after a bench run
    whose pid is gone (or after `me`). Returns what was removed."""
    me = os.getpid() if me is None else me

    def ours(pid: int) -> bool:
        return pid == me or not pid_alive(pid)
    removed = []
    if which("nft"):
        handles = [(t, h) for t, h in forward_exceptions() if ours(int(TABLE_RE.match(t).group(1)))]
        if handles:
            script = "".join(f"delete rule ip filter FORWARD handle {h}\n" for _, h in handles)
            sh(["nft", "-f", "-"], input=script, timeout=20)
            removed.append(f"{len(handles)} FORWARD rule(s) berth:berth_bench_*")
        for t in nft_tables():
            fam, _, name = t.partition(" ")
            m = TABLE_RE.match(name)
            if fam == "inet" and m and ours(int(m.group(1))):
                sh(["nft", "delete", "table", "inet", name], timeout=20)
                removed.append(f"nft table inet {name}")
    if which("ip"):
        for name, kind in links().items():
            m = BRIDGE_RE.match(name)
            if m and kind == "bridge" and ours(int(m.group(1))):
                sh(["ip", "link", "del", name], timeout=20)
                removed.append(f"bridge {name}")
    return removed


GENERIC_RE = re.compile(r"\b(DOCKER[-_A-Z0-9]*|NETAVARK[-_A-Z0-9]*|CNI-[-_A-Za-z0-9]*)\b|netavark")


class Ours:
    """What the bench's engines may have added, by name: the bench's bridges,
    subnets and nftables tables, plus the generic chains dockerd and netavark
    make (DOCKER*, NETAVARK*, CNI-*) — those only while no other dockerd /
    conmon runs on the host (else they may be someone else's)."""

    def __init__(self, bridges, subnets, tables):
        self.markers = [m for m in list(bridges) + list(tables) if m]
        self.subnets = [ipaddress.ip_network(str(x)) for x in subnets]
        self.foreign = foreign_engines()

    def specific(self, text: str) -> bool:
        if any(re.search(r"(?<![\w.])" + re.escape(m) + r"(?![\w])", text) for m in self.markers):
            return True
        for a in re.findall(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?:/\d+)?", text):
            try:
                ip = ipaddress.ip_address(a)
            except ValueError:
                continue
            if any(ip in n for n in self.subnets):
                return True
        return False

    def generic(self, text: str) -> bool:
        return bool(GENERIC_RE.search(text))

    def owns(self, text: str) -> bool:
        return self.specific(text) or (self.generic(text) and not self.foreign)


def foreign_engines() -> list[str]:
    """Other users of dockerd's / netavark's shared iptables plumbing alive now
    (the bench's own engines are stopped by the time this is asked): a dockerd
    without `--iptables=false`, a running netavark / aardvark-dns, or podman
    network namespaces (`/run/netns/netns-*`). Their rules are not the bench's
    to delete."""
    found = []
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/comm") as f:
                comm = f.read().strip()
            if comm not in ("dockerd", "netavark", "aardvark-dns"):
                continue
            with open(f"/proc/{e}/cmdline", "rb") as f:
                args = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if comm == "dockerd" and "--iptables=false" in args:
            continue
        found.append(f"{comm} (pid {e})")
    try:
        ns = [n for n in os.listdir("/run/netns") if n.startswith("netns-")]
    except OSError:
        ns = []
    if ns:
        found.append(f"{len(ns)} podman network namespace(s) in /run/netns")
    return found


def _undo_iptables(cmd: str, table: str, before: list[str] | None, ours: Ours,
                   actions: list[str], problems: list[str]) -> list[str]:
    """Delete the rules/chains present now but not in `before` that are ours;
    set policies back (unless another dockerd runs). Returns what was left
    alone because it is not attributable to the bench."""
    after = ipt_dump(cmd, table)
    left = []
    if after is None or before is None:
        return left
    remaining = list(before)
    added_rules = []
    for line in after:
        if line in remaining:
            remaining.remove(line)
        elif line.startswith("-A "):
            if ours.owns(line):
                added_rules.append(line)
            else:
                left.append(line)
    for line in reversed(added_rules):
        args = shlex.split(line)
        rc, _, err = sh([cmd, "-w", "5", "-t", table, "-D", *args[1:]], timeout=20)
        if rc != 0:
            problems.append(f"`{cmd} -t {table} -D {line[3:]}` failed: {short(err, 160)}")
    if added_rules:
        actions.append(f"deleted {len(added_rules)} {cmd} -t {table} rule(s)")
    before_chains = {l.split()[1] for l in before if l.startswith("-N ")}
    new_chains = [l.split()[1] for l in after if l.startswith("-N ") and l.split()[1] not in before_chains]
    mine = [c for c in new_chains if ours.owns(c)]
    left += [f"-N {c}" for c in new_chains if c not in mine]
    for c in mine:
        sh([cmd, "-w", "5", "-t", table, "-F", c], timeout=20)
    for c in mine:
        rc, _, err = sh([cmd, "-w", "5", "-t", table, "-X", c], timeout=20)
        if rc != 0:
            problems.append(f"`{cmd} -t {table} -X {c}` failed: {short(err, 160)}")
    if mine:
        actions.append(f"deleted {cmd} -t {table} chain(s) {', '.join(mine)}")
    before_pol = {l.split()[1]: l.split()[2] for l in before if l.startswith("-P ")}
    for l in after:
        if l.startswith("-P "):
            _, chain, pol = l.split()[:3]
            if chain in before_pol and before_pol[chain] != pol:
                if ours.foreign:
                    left.append(f"-P {chain} {pol} (left: {', '.join(ours.foreign[:3])} running)")
                    continue
                rc, _, err = sh([cmd, "-w", "5", "-t", table, "-P", chain, before_pol[chain]], timeout=20)
                if rc != 0:
                    problems.append(f"`{cmd} -t {table} -P {chain} {before_pol[chain]}` failed: {short(err, 160)}")
                else:
                    actions.append(f"{cmd} -t {table} -P {chain} {before_pol[chain]} (was {pol})")
    return left


def restore(before: dict, own_bridges: list[str], own_tables: list[str], own_subnets=()) -> dict:
    """Put back what the bench's engines changed since `before`, touching only
    what is attributable to the bench (Ours). Returns {'actions', 'problems',
    'differences' (still differing and the bench's), 'others' (differences made
    meanwhile by other processes on the host, left alone)}."""
    actions, problems, left = [], [], []
    for t in own_tables:
        handles = [h for tt, h in forward_exceptions() if tt == t]
        if handles:
            sh(["nft", "-f", "-"], input="".join(f"delete rule ip filter FORWARD handle {h}\n" for h in handles),
               timeout=20)
            actions.append(f"deleted {len(handles)} FORWARD rule(s) `berth:{t}`")
        if f"inet {t}" in nft_tables():
            sh(["nft", "delete", "table", "inet", t], timeout=20)
            actions.append(f"nft delete table inet {t}")
    ours = Ours(own_bridges, own_subnets, own_tables)
    mid = snapshot()
    for key, v in mid["iptables"].items():
        if v != before["iptables"].get(key):
            cmd, _, table = key.split()
            left += _undo_iptables(cmd, table, before["iptables"].get(key), ours, actions, problems)
    # iptables-nft tables that did not exist before and hold nothing now
    for t in nft_tables():
        if t in before["nft_tables"]:
            continue
        fam, _, name = t.partition(" ")
        cmd = {"ip": "iptables", "ip6": "ip6tables"}.get(fam)
        if cmd is None or name not in IPT_TABLES:
            continue
        cur = ipt_dump(cmd, name) or []
        if all(l.startswith("-P ") and l.endswith(" ACCEPT") for l in cur):
            rc, _, err = sh(["nft", "delete", "table", fam, name], timeout=20)
            if rc == 0:
                actions.append(f"nft delete table {fam} {name} (made by iptables-nft, empty again)")
            else:
                problems.append(f"nft delete table {fam} {name}: {short(err, 160)}")
    for b in own_bridges:
        if delete_link(b):
            actions.append(f"ip link del {b}")
    for k, v in before["sysctl"].items():
        now = read_sysctl(k)
        if v is not None and now != v:
            if ours.foreign:
                left.append(f"sysctl {k.replace('/', '.')}={now} (was {v}; left: {', '.join(ours.foreign[:3])} running)")
                continue
            err = write_sysctl(k, v)
            if err:
                problems.append(err)
            else:
                actions.append(f"sysctl {k.replace('/', '.')}={v} (was {now})")
    diffs = compare(before, snapshot())
    mine = [d for d in diffs if ours.owns(d) or d.startswith("sysctl")]
    shared = [d for d in diffs if d not in mine and ours.generic(d)]
    return {"actions": actions, "problems": problems, "differences": mine, "shared": shared,
            "foreign": ours.foreign, "others": [d for d in diffs if d not in mine and d not in shared],
            "left_alone": left}


def compare(before: dict, after: dict) -> list[str]:
    """Every difference, one item per interface / table / rule / sysctl."""
    diffs = []
    for n in sorted(set(after["links"]) - set(before["links"])):
        diffs.append(f"new interface {n} ({after['links'][n] or '?'})")
    for n in sorted(set(before["links"]) - set(after["links"])):
        diffs.append(f"interface {n} gone")
    for t in sorted(set(after["nft_tables"]) - set(before["nft_tables"])):
        diffs.append(f"new nftables table {t}")
    for t in sorted(set(before["nft_tables"]) - set(after["nft_tables"])):
        diffs.append(f"nftables table {t} gone")
    for k, v in after["iptables"].items():
        b = before["iptables"].get(k)
        if v != b and v is not None and b is not None:
            diffs += [f"`{k} -S`: + {l}" for l in v if l not in b]
            diffs += [f"`{k} -S`: - {l}" for l in b if l not in v]
    for k, v in after["sysctl"].items():
        if v != before["sysctl"].get(k):
            diffs.append(f"sysctl {k.replace('/', '.')}: {before['sysctl'].get(k)} → {v}")
    return diffs


def cleanup_notes(r: dict) -> list[str]:
    """Report notes for a restore() result."""
    notes = [f"Cleanup problem: {p}" for p in r["problems"]]
    if r["differences"]:
        notes.append("**Host network state after cleanup differs from before (the bench's part):** "
                     + "; ".join(r["differences"]))
    else:
        notes.append("Host network state after cleanup: no difference from the snapshot taken before that is "
                     "the bench's (interfaces, nftables tables, iptables/ip6tables rules, chains and policies of "
                     "filter/nat/mangle/raw, ip_forward, bridge-nf-call-*, route_localnet); undone: "
                     + ("; ".join(r["actions"]) or "nothing") + ".")
    if r["shared"]:
        notes.append("**Left in place** because another user of dockerd's / netavark's shared iptables plumbing "
                     f"was running ({', '.join(r['foreign'][:4])}), so it may be theirs (remove it by hand if "
                     "not): " + "; ".join(r["shared"][:16]) + (" …" if len(r["shared"]) > 16 else "") + ".")
    if r["others"]:
        notes.append("Meanwhile other processes on the host changed (not the bench's; left alone): "
                     + "; ".join(r["others"][:12]) + (" …" if len(r["others"]) > 12 else "") + ".")
    return notes


def describe(snap: dict) -> str:
    """One line for a report note."""
    pol = None
    for l in snap["iptables"].get("iptables -t filter") or []:
        if l.startswith("-P FORWARD "):
            pol = l.split()[2]
    n_rules = sum(1 for v in snap["iptables"].values() if v for l in v if l.startswith("-A "))
    n_chains = sum(1 for v in snap["iptables"].values() if v for l in v if l.startswith("-N "))
    return (f"{len(snap['links'])} interfaces, nftables tables [{', '.join(snap['nft_tables']) or 'none'}], "
            f"iptables/ip6tables: {n_rules} rules, {n_chains} user chains, FORWARD policy {pol}; "
            + ", ".join(f"{k.split('/')[-1] if 'bridge' in k else k.replace('/', '.')}={v}"
                        for k, v in snap["sysctl"].items() if v is not None))


def log_result(r: dict, what: str) -> None:
    if r["actions"]:
        log(f"{what}: network cleanup: {'; '.join(r['actions'])}")
    if r["shared"]:
        log(f"{what}: left in place, another dockerd/netavark user runs ({', '.join(r['foreign'][:4])}): "
            f"{'; '.join(r['shared'][:10])}")
    if r["others"]:
        log(f"{what}: changed meanwhile by other processes (left alone): {'; '.join(r['others'][:10])}")
    if r["differences"]:
        log(f"{what}: host network state differs after cleanup: {'; '.join(r['differences'])}")
    if r["problems"]:
        log(f"{what}: cleanup problems: {'; '.join(r['problems'])}")
