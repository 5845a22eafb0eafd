//! The commands, and the dispatch of docker's top-level names and their `container`,
//! `image` and `system` group aliases to them, and the `network` and `volume` groups.

mod container;
mod exec;
mod files;
mod image;
mod inspect;
mod lifecycle;
mod network;
mod objects;
mod ps;
mod system;
mod volume;

use std::path::PathBuf;

pub use objects::group_usage;

use crate::api::Api;
use crate::cli::{Cmd, ContainerCmd, ImageCmd, InspectArgs, SystemCmd, TypedInspectArgs};
use crate::error::Result;

/// POST a prune endpoint with `q`; print docker's "Deleted <title>:" list of what the
/// answer's `key` names; return the space reclaimed (containers, networks, volumes).
fn prune_and_list(ctx: &Ctx, path: &str, q: &crate::api::Query, key: &str, title: &str) -> Result<u64> {
    let v: serde_json::Value = ctx.api.json("POST", &format!("{path}{}", q.as_str()), None)?;
    let deleted: Vec<&str> = v[key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d.as_str())
        .collect();
    if !deleted.is_empty() {
        crate::format::println(&format!("Deleted {title}:\n{}\n", deleted.join("\n")))?;
    }
    Ok(v["SpaceReclaimed"].as_u64().unwrap_or(0))
}

pub struct Ctx {
    pub api: Api,
    /// `--config`: where config.json (registry logins) lives.
    pub config_dir: Option<PathBuf>,
}

fn typed(a: TypedInspectArgs, kind: &str) -> InspectArgs {
    InspectArgs {
        format: a.format,
        size: a.size,
        kind: Some(kind.to_string()),
        names: a.names,
    }
}

pub fn dispatch(ctx: &Ctx, cmd: Cmd) -> Result<()> {
    use Cmd as C;
    use ContainerCmd as K;
    use ImageCmd as I;
    use SystemCmd as S;
    match cmd {
        C::Run(a) | C::Container(K::Run(a)) => container::run(ctx, a),
        C::Create(a) | C::Container(K::Create(a)) => container::create(ctx, a),
        C::Start(a) | C::Container(K::Start(a)) => container::start(ctx, a),
        C::Attach(a) | C::Container(K::Attach(a)) => container::attach(ctx, a),
        C::Stop(a) | C::Container(K::Stop(a)) => lifecycle::stop(ctx, a, false),
        C::Restart(a) | C::Container(K::Restart(a)) => lifecycle::stop(ctx, a, true),
        C::Kill(a) | C::Container(K::Kill(a)) => lifecycle::kill(ctx, a),
        C::Rm(a) | C::Container(K::Rm(a)) => lifecycle::rm(ctx, a),
        C::Wait(a) | C::Container(K::Wait(a)) => lifecycle::wait(ctx, a),
        C::Rename(a) | C::Container(K::Rename(a)) => lifecycle::rename(ctx, a),
        C::Pause(a) | C::Container(K::Pause(a)) => lifecycle::pause(ctx, a, true),
        C::Unpause(a) | C::Container(K::Unpause(a)) => lifecycle::pause(ctx, a, false),
        C::Update(a) | C::Container(K::Update(a)) => lifecycle::update(ctx, a),
        C::Container(K::Prune(a)) => lifecycle::prune(ctx, a),
        C::Ps(a) | C::Container(K::Ls(a)) => ps::ps(ctx, a),
        C::Logs(a) | C::Container(K::Logs(a)) => exec::logs(ctx, a),
        C::Exec(a) | C::Container(K::Exec(a)) => exec::exec(ctx, a),
        C::Inspect(a) => inspect::inspect(ctx, a),
        C::Container(K::Inspect(a)) => inspect::inspect(ctx, typed(a, "container")),
        C::Image(I::Inspect(a)) => inspect::inspect(ctx, typed(a, "image")),
        C::Top(a) | C::Container(K::Top(a)) => inspect::top(ctx, a),
        C::Port(a) | C::Container(K::Port(a)) => inspect::port(ctx, a),
        C::Stats(a) | C::Container(K::Stats(a)) => inspect::stats(ctx, a),
        C::Diff(a) | C::Container(K::Diff(a)) => files::diff(ctx, a),
        C::Cp(a) | C::Container(K::Cp(a)) => files::cp(ctx, a),
        C::Commit(a) | C::Container(K::Commit(a)) => files::commit(ctx, a),
        C::Export(a) | C::Container(K::Export(a)) => files::export(ctx, a),
        C::Images(a) | C::Image(I::Ls(a)) => image::images(ctx, a),
        C::Pull(a) | C::Image(I::Pull(a)) => image::pull(ctx, a),
        C::Push(a) | C::Image(I::Push(a)) => image::push(ctx, a),
        C::Tag(a) | C::Image(I::Tag(a)) => image::tag(ctx, a),
        C::Rmi(a) | C::Image(I::Rm(a)) => image::rmi(ctx, a),
        C::Save(a) | C::Image(I::Save(a)) => image::save(ctx, a),
        C::Load(a) | C::Image(I::Load(a)) => image::load(ctx, a),
        C::Import(a) | C::Image(I::Import(a)) => image::import(ctx, a),
        C::History(a) | C::Image(I::History(a)) => image::history(ctx, a),
        C::Image(I::Prune(a)) => image::prune(ctx, a),
        C::Login(a) => system::login(ctx, a),
        C::Logout(a) => system::logout(ctx, a),
        C::Info(a) | C::System(S::Info(a)) => system::info(ctx, a),
        C::Version(a) => system::version(ctx, a),
        C::Events(a) | C::System(S::Events(a)) => system::events(ctx, a),
        C::System(S::Df(a)) => system::df(ctx, a),
        C::System(S::Prune(a)) => system::prune(ctx, a),
        C::Network(g) => network::run(ctx, g),
        C::Volume(g) => volume::run(ctx, g),
    }
}
