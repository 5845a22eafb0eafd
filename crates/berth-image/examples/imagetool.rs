//! A small driver of the image library, for the benchmarks in `bench/` (image-pull,
//! image-save-load) and for trying things by hand:
//!
//! ```text
//! imagetool pull REFERENCE STORE_DIR    pull into a store and unpack every layer
//! imagetool pull-then-unpack REF DIR    the same without the overlap: download every
//!                                       blob, then unpack from the store (for comparison)
//! imagetool save STORE_DIR NAME OUT.tar save NAME (OCI layout + docker-archive)
//! imagetool load STORE_DIR IN.tar       load an archive into the store
//! ```
//!
//! It prints nothing on success. With `BERTH_IMAGETOOL_TIMINGS=1` it reports the time
//! of each phase on stderr. Registries on loopback addresses are reached over plain HTTP
//! when they do not speak TLS, as Docker does; `~/.docker/config.json` is not read.

use std::error::Error;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::time::Instant;

use berth_image::images::ImageStore;
use berth_image::registry::{Client, PullOptions};
use berth_image::{archive, Reference};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

struct Phases {
    on: bool,
    last: Instant,
}

impl Phases {
    fn new() -> Phases {
        Phases {
            on: std::env::var_os("BERTH_IMAGETOOL_TIMINGS").is_some_and(|v| v != "0"),
            last: Instant::now(),
        }
    }

    fn done(&mut self, what: &str) {
        if self.on {
            eprintln!("{what}: {:.3} s", self.last.elapsed().as_secs_f64());
        }
        self.last = Instant::now();
    }
}

fn pull(reference: &str, dir: &str, overlap: bool) -> Result<()> {
    let mut t = Phases::new();
    let reference = Reference::parse(reference)?;
    let store = ImageStore::open(dir)?;
    let client = Client::builder().docker_config(None).build()?;
    t.done("open");
    let options = PullOptions {
        platform: None,
        progress: None,
    };
    let digest = if overlap {
        // Layers are unpacked while they download; naming the image then finds them done.
        let done = client.pull_and_unpack(&reference, store.blobs(), store.snapshots(), &options)?;
        t.done("pull+unpack");
        done.pulled.digest
    } else {
        let pulled = client.pull(&reference, store.blobs(), &options)?;
        t.done("download");
        pulled.digest
    };
    store.set_image(Some(&reference), &digest)?;
    let image = store.resolve(&reference.to_string())?;
    store.ensure_unpacked(&image)?;
    t.done(if overlap { "record" } else { "unpack" });
    Ok(())
}

fn save(dir: &str, name: &str, out: &str) -> Result<()> {
    let mut t = Phases::new();
    let store = ImageStore::open(dir)?;
    let mut file = BufWriter::with_capacity(1 << 20, File::create(out)?);
    archive::save(&store, &[name], &mut file)?;
    file.flush()?;
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    t.done("save");
    Ok(())
}

fn load(dir: &str, input: &str) -> Result<()> {
    let mut t = Phases::new();
    let store = ImageStore::open(dir)?;
    let file = BufReader::with_capacity(1 << 20, File::open(input)?);
    archive::load(&store, file)?;
    t.done("load");
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["pull", reference, dir] => pull(reference, dir, true),
        ["pull-then-unpack", reference, dir] => pull(reference, dir, false),
        ["save", dir, name, out] => save(dir, name, out),
        ["load", dir, input] => load(dir, input),
        _ => Err(
            "usage: imagetool pull|pull-then-unpack REFERENCE STORE_DIR | save STORE_DIR NAME OUT.tar | load STORE_DIR IN.tar".into(),
        ),
    };
    if let Err(e) = result {
        // Berth's error messages already include their causes.
        eprintln!("imagetool: {e}");
        std::process::exit(1);
    }
}
