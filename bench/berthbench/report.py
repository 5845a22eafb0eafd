"""results.json -> report.md (generic over comparisons)."""

from __future__ import annotations


def _num(v, unit: str) -> str:
    if v is None:
        return "–"
    if unit == "ms":
        return f"{v:.2f}"
    if unit == "MiB":
        return f"{v:.2f}" if abs(v) < 10 else f"{v:.1f}"
    return f"{v:.3g}"


def _ratio(r) -> str:
    return "–" if r is None else f"{r:.2f}×"


def _cell(text: str) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def render(data: dict) -> str:
    L = []
    add = L.append
    add(f"# Berth benchmark report — {data['started']}")
    add("")
    add(f"- Command: `{data['command']}` ({data['mode']} mode), took {data['duration_s']:.0f} s")
    add(f"- Raw data: `results.json` beside this file"
        + ("; chart: `ratios.png`" if data.get("chart", {}).get("file") else ""))
    add("- Ratio columns are **the Berth subject's median ÷ that subject's median** "
        "(berth-runtime for runtime comparisons, berth for image ones; < 1: Berth is "
        "faster / smaller for lower-is-better metrics).")
    add("")

    m = data["machine"]
    add("## Machine")
    add("")
    add("| | |")
    add("|---|---|")
    add(f"| CPU | {m['cpu_model']} |")
    add(f"| Cores | {m['cores_online']} online, {m['cores_usable']} usable by the bench |")
    add(f"| Memory | {m['memory_gib']} GiB |")
    add(f"| Kernel | {m['kernel']} ({m['arch']}) |")
    add(f"| OS | {m['os']} |")
    add(f"| cgroup mode (detected) | **{m['cgroup_mode']}**"
        f" — v1: {len(m['cgroup_v1_mounts'])} hierarchies; v2: {', '.join(m['cgroup_v2_mounts']) or 'none'} |")
    ns = data.get("namespace", {})
    add(f"| Runtimes ran in | {_cell(ns.get('description', 'the host mount namespace'))} |")
    la = data.get("load_average", {})
    add(f"| Load average (1/5/15 min) | start {la.get('start')}, end {la.get('end')} "
        f"(other load on the machine makes numbers noisy) |")
    add(f"| Python | {m['python']} |")
    add("")

    add("## Runtimes")
    add("")
    add("| runtime | status | binary | version |")
    add("|---|---|---|---|")
    for rt in data["runtimes"]:
        status = "usable" if not rt["not_measured_reason"] else "not measured: " + rt["not_measured_reason"]
        ver = (rt.get("version") or "–").splitlines()[0]
        binary = rt.get("binary") or "–"
        if rt.get("binary_sha256"):
            binary += f" (sha256 {rt['binary_sha256']}…, {rt['binary_mtime']})"
        add(f"| {rt['name']} | {_cell(status)} | {_cell(binary)} | {_cell(ver)} |")
    add("")
    for rt in data["runtimes"]:
        if rt.get("source"):
            add(f"- {rt['name']} source: {_cell(rt['source'])}")
    add("")
    for rt in data["runtimes"]:
        if rt.get("version"):
            add(f"<details><summary>{rt['name']} --version</summary>")
            add("")
            add("```")
            add(rt["version"])
            add("```")
            add("</details>")
            add("")

    for comp in data["comparisons"]:
        add(f"## {comp['name']}: {comp['title']}")
        add("")
        if comp.get("error"):
            add(f"**Comparison failed:** {_cell(comp['error'])}")
            add("")
        if comp.get("description"):
            add(comp["description"])
            add("")
        params = ", ".join(f"{k}={v}" for k, v in comp.get("params", {}).items())
        add(f"Parameters: {params}. Took {comp.get('seconds')} s.")
        add("")
        subjects = comp.get("subjects", [])
        base = comp.get("baseline")
        for metric in comp.get("metrics", []):
            k, unit = metric["key"], metric["unit"]
            add(f"### {metric['label']} ({unit}, {metric.get('better', 'lower')} is better)")
            add("")
            if metric.get("unavailable"):
                add(f"Not measured for any runtime: {_cell(metric['unavailable'])}")
                add("")
                continue
            add(f"| runtime | n | median | p90 | min | max | mean | {base} ÷ this (median) |")
            add("|---|---:|---:|---:|---:|---:|---:|---:|")
            for s in subjects:
                if not s["measured"]:
                    add(f"| {s['name']} | – | not measured: {_cell(s['reason'])} | | | | | |")
                    continue
                why = s.get("extra", {}).get("not_measured", {}).get(k)
                if why:
                    add(f"| {s['name']} | – | not measured: {_cell(why)} | | | | | |")
                    continue
                st = s["stats"].get(k, {})
                if not st.get("n"):
                    add(f"| {s['name']} | 0 | no samples | | | | | |")
                    continue
                if s["name"] == base:
                    ratio = "1.00× (baseline)"
                else:
                    r = comp.get("ratios", {}).get(k, {}).get(s["name"])
                    ratio = _ratio(r) if r is not None else f"n/a ({base} not measured)"
                add(f"| {s['name']} | {st.get('n', 0)} | **{_num(st.get('median'), unit)}** | "
                    f"{_num(st.get('p90'), unit)} | {_num(st.get('min'), unit)} | "
                    f"{_num(st.get('max'), unit)} | {_num(st.get('mean'), unit)} | {ratio} |")
            add("")
        add("<details><summary>Method</summary>")
        add("")
        add(comp.get("method", ""))
        add("")
        add("</details>")
        add("")
        for n in comp.get("notes", []):
            add(f"- Note: {n}")
        if comp.get("notes"):
            add("")

    add("## Not measured")
    add("")
    nm = [(c["name"], s["name"], s["reason"]) for c in data["comparisons"]
          for s in c.get("subjects", []) if not s["measured"]]
    nm += [(c["name"], f"{s['name']} ({k})", why) for c in data["comparisons"]
           for s in c.get("subjects", []) if s["measured"]
           for k, why in s.get("extra", {}).get("not_measured", {}).items()]
    if nm:
        for c, s, r in nm:
            add(f"- {c} / {s}: not measured: {r}")
    else:
        add("- nothing: every runtime was measured in every comparison")
    add("")

    add("## Housekeeping")
    add("")
    ch = data.get("chart", {})
    add(f"- Chart: {'`' + ch['file'] + '`' if ch.get('file') else 'skipped'} — {ch.get('note', '')}")
    inst = data.get("install", {})
    add(f"- Packages installed by this run: {', '.join(inst.get('installed', [])) or 'none'}"
        + (" (--quick: nothing is installed)" if data["mode"] == "quick" else ""))
    for p, why in inst.get("failed", {}).items():
        add(f"- Package {p}: {why}")
    cl = data.get("cleanup", {})
    add(f"- Cleanup: {cl.get('summary', 'n/a')}")
    add("")
    return "\n".join(L)
