//! The `volume` group: create, ls, inspect, rm, prune.

use serde_json::{json, Value};

use super::objects::{
    check_args, confirm, group_usage, inspect as inspect_docs, joined_labels, labels, list_format, map_opts,
    natural_cmp, path_escape, Count,
};
use super::Ctx;
use crate::api::{filters_json, Query};
use crate::cli_netvol::{VolCreateArgs, VolInspectArgs, VolLsArgs, VolPruneArgs, VolRmArgs, VolumeCmd, VolumeGroup};
use crate::error::{Error, Result};
use crate::format::{human_size, println};

const DEFAULT_TABLE: &str = "table {{.Driver}}\t{{.Name}}";
// Escaped newlines: the format is trimmed before they become real ones.
const RAW: (&str, &str) = ("name: {{.Name}}\\ndriver: {{.Driver}}\\n", "name: {{.Name}}");

pub fn run(ctx: &Ctx, g: VolumeGroup) -> Result<()> {
    use VolumeCmd as V;
    match g.cmd {
        None => group_usage("volume", false, &g.unknown),
        Some(V::Create(a)) => create(ctx, a),
        Some(V::Ls(a)) => ls(ctx, a),
        Some(V::Inspect(a)) => inspect(ctx, a),
        Some(V::Rm(a)) => rm(ctx, a),
        Some(V::Prune(a)) => prune(ctx, a),
    }
}

pub fn create(ctx: &Ctx, a: VolCreateArgs) -> Result<()> {
    let labels = labels(&a.label)?;
    check_args("volume create", "[OPTIONS] [VOLUME]", &a.args, Count::AtMost(1))?;
    let mut name = a.name.clone().unwrap_or_default();
    if let Some(n) = a.args.first() {
        if !name.is_empty() {
            return Err(Error::msg(
                "conflicting options: cannot specify a volume-name through both --name and as a positional arg",
            ));
        }
        name = n.clone();
    }
    // docker's fields are all `omitempty`.
    let mut body = serde_json::Map::new();
    if !a.driver.is_empty() {
        body.insert("Driver".into(), json!(a.driver));
    }
    let opts = map_opts(&a.opt);
    if !opts.is_empty() {
        body.insert("DriverOpts".into(), Value::Object(opts));
    }
    if !labels.is_empty() {
        body.insert("Labels".into(), Value::Object(labels));
    }
    if !name.is_empty() {
        body.insert("Name".into(), json!(name));
    }
    let v: Value = ctx.api.json("POST", "/volumes/create", Some(&Value::Object(body)))?;
    println(v["Name"].as_str().unwrap_or(""))
}

fn headers() -> Value {
    json!({"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
           "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE", "Status": "STATUS", "Group": "GROUP",
           "Availability": "AVAILABILITY"})
}

/// One volume of `/volumes` as docker's volume context shows it (the cluster columns are
/// N/A: berthd has no cluster volumes).
fn row(v: &Value) -> Value {
    let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
    let usage = &v["UsageData"];
    let (links, size) = if usage.is_object() {
        (
            usage["RefCount"].as_i64().unwrap_or(0).to_string(),
            human_size(usage["Size"].as_f64().unwrap_or(0.0)),
        )
    } else {
        ("N/A".to_string(), "N/A".to_string())
    };
    json!({
        "Name": s("Name"), "Driver": s("Driver"), "Scope": s("Scope"), "Mountpoint": s("Mountpoint"),
        "Labels": joined_labels(&v["Labels"]), "Links": links, "Size": size, "Status": "N/A",
        "Group": "N/A", "Availability": "N/A", "__labels": v["Labels"].clone(),
    })
}

pub fn ls(ctx: &Ctx, a: VolLsArgs) -> Result<()> {
    check_args("volume ls", "[OPTIONS]", &a.args, Count::NoArgs)?;
    let mut q = Query::new();
    if !a.filter.is_empty() {
        q.add("filters", filters_json(&a.filter)?);
    }
    let resp: Value = ctx.api.get(&format!("/volumes{}", q.as_str()))?;
    let mut list = resp["Volumes"].as_array().cloned().unwrap_or_default();
    list.sort_by(|x, y| natural_cmp(x["Name"].as_str().unwrap_or(""), y["Name"].as_str().unwrap_or("")));
    let fmt = list_format(a.format.as_deref(), a.quiet, DEFAULT_TABLE, "{{.Name}}", RAW)?;
    let rows: Vec<Value> = list.iter().map(row).collect();
    fmt.print(&headers(), &rows)
}

pub fn inspect(ctx: &Ctx, a: VolInspectArgs) -> Result<()> {
    check_args(
        "volume inspect",
        "[OPTIONS] VOLUME [VOLUME...]",
        &a.args,
        Count::AtLeast(1),
    )?;
    inspect_docs(ctx, &a.args, a.format.as_deref(), |n| {
        format!("/volumes/{}", path_escape(n))
    })
}

/// Each volume in turn; the failures together at the end (exit 1), as docker reports them.
pub fn rm(ctx: &Ctx, a: VolRmArgs) -> Result<()> {
    check_args("volume rm", "[OPTIONS] VOLUME [VOLUME...]", &a.args, Count::AtLeast(1))?;
    let force = if a.force { "?force=1" } else { "" };
    let mut errs = Vec::new();
    for n in &a.args {
        match ctx
            .api
            .call("DELETE", &format!("/volumes/{}{force}", path_escape(n)), None)
        {
            Ok(()) => println(n)?,
            Err(e) => errs.push(e.to_string()),
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(Error::msg(errs.join("\n")))
    }
}

pub fn prune(ctx: &Ctx, a: VolPruneArgs) -> Result<()> {
    check_args("volume prune", "[OPTIONS]", &a.args, Count::NoArgs)?;
    let mut filters = a.filter.clone();
    let warning = if a.all {
        if filters
            .iter()
            .any(|f| f.split('=').next().unwrap_or("").trim().eq_ignore_ascii_case("all"))
        {
            return Err(Error::msg(
                "conflicting options: cannot specify both --all and --filter all=1",
            ));
        }
        filters.push("all=true".into());
        "WARNING! This will remove all local volumes not used by at least one container."
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container."
    };
    let mut q = Query::new();
    if !filters.is_empty() {
        q.add("filters", filters_json(&filters)?);
    }
    if !a.force && !confirm(warning)? {
        return Ok(());
    }
    let space = prune_volumes(ctx, &q)?;
    println(&format!("Total reclaimed space: {}", human_size(space as f64)))
}

/// POST /volumes/prune with `q`, printing what went; the space reclaimed.
pub fn prune_volumes(ctx: &Ctx, q: &Query) -> Result<u64> {
    super::prune_and_list(ctx, "/volumes/prune", q, "VolumesDeleted", "Volumes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_as_docker_shows_them() {
        let v = json!({"Name": "v1", "Driver": "local", "Scope": "local", "Mountpoint": "/m",
                       "Labels": {"b": "2", "a": "1"}, "UsageData": null});
        let r = row(&v);
        assert_eq!(r["Labels"], "a=1,b=2");
        assert_eq!(r["Links"], "N/A");
        assert_eq!(r["Size"], "N/A");
        let r = row(&json!({"Name": "v", "UsageData": {"RefCount": 2, "Size": 2048}}));
        assert_eq!((r["Links"].as_str(), r["Size"].as_str()), (Some("2"), Some("2.048kB")));
        let f = list_format(None, false, DEFAULT_TABLE, "{{.Name}}", RAW).unwrap();
        let out = f.render(&headers(), &[row(&v)]).unwrap();
        assert_eq!(out, "DRIVER    VOLUME NAME\nlocal     v1\n");
        let f = list_format(Some("raw"), false, DEFAULT_TABLE, "{{.Name}}", RAW).unwrap();
        assert_eq!(f.render(&headers(), &[row(&v)]).unwrap(), "name: v1\ndriver: local\n\n");
    }
}
