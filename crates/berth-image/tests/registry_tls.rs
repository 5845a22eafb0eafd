//! HTTPS registries with per-registry CAs and client certificates read from a Docker
//! `certs.d` directory: a CA, a server certificate for 127.0.0.1 and a client
//! certificate made with `openssl`, and `docker-registry` serving TLS (once requiring
//! client certificates).

mod registry_util;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use berth_image::registry::{Client, PullOptions, PushOptions, RegistryError};
use berth_image::store::BlobStore;
use registry_util::{make_image, Registry};

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is needed (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const EC: [&str; 4] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];

/// `name.key` + `name.crt` signed by `ca.crt`, with extensions `ext`.
fn signed(dir: &Path, name: &str, cn: &str, ext: &str) {
    let (key, csr, crt, extfile) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
        format!("{name}.ext"),
    );
    let subj = format!("/CN={cn}");
    let mut args = vec!["req", "-nodes", "-subj", &subj, "-keyout", &key, "-out", &csr];
    args.extend(EC);
    openssl(&args, dir);
    std::fs::write(dir.join(&extfile), ext).expect("write ext");
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-sha256",
            "-extfile",
            &extfile,
            "-out",
            &crt,
        ],
        dir,
    );
}

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut args = vec![
            "req",
            "-x509",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=berth-test-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ];
        args.extend(EC);
        openssl(&args, dir.path());
        signed(
            dir.path(),
            "server",
            "127.0.0.1",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        );
        signed(
            dir.path(),
            "client",
            "berth-test-client",
            "extendedKeyUsage=clientAuth\n",
        );
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn start_registry(&self, require_client_cert: bool) -> Registry {
        let mut tls = format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            self.path("server.crt").display(),
            self.path("server.key").display()
        );
        if require_client_cert {
            tls.push_str(&format!("    clientcas:\n      - {}\n", self.path("ca.crt").display()));
        }
        Registry::start_with_auth(tempfile::tempdir().expect("tempdir"), &tls)
    }

    /// A certs.d directory with an entry for `registry` holding `files` (name in
    /// certs.d, file of the PKI).
    fn certs_d(&self, registry: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = dir.path().join(registry);
        std::fs::create_dir_all(&host).expect("mkdir certs.d/<host>");
        for (name, from) in files {
            std::fs::copy(self.path(from), host.join(name)).expect("copy cert");
        }
        dir
    }
}

fn client(certs_d: &Path) -> Client {
    Client::builder()
        .docker_config(None)
        .certs_dir(Some(certs_d.to_path_buf()))
        .connect_timeout(Duration::from_secs(5))
        .response_timeout(Duration::from_secs(20))
        .read_timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

fn assert_tls_error(err: &RegistryError, registry: &str, what: &str) {
    let msg = err.to_string();
    assert!(
        matches!(err, RegistryError::Tls { .. }),
        "{what}: not a TLS error: {msg}"
    );
    assert!(
        msg.contains(&format!("registry {registry}")) && msg.contains("TLS"),
        "{what}: {msg}"
    );
}

#[test]
fn https_registry_with_ca_from_certs_d() {
    let pki = Pki::new();
    let reg = pki.start_registry(false);
    let dir = tempfile::tempdir().expect("tempdir");
    let src = BlobStore::open(dir.path().join("src")).expect("store");
    let dst = BlobStore::open(dir.path().join("dst")).expect("store");
    let img = make_image(&src, "tls", "amd64", 20_000);
    let reference = reg.reference("tls/app:1");

    // With the CA in certs.d/<host:port>/ca.crt: HTTPS (even on loopback), push and pull.
    let with_ca = pki.certs_d(&reg.addr, &[("ca.crt", "ca.crt")]);
    let c = client(with_ca.path());
    assert_eq!(c.endpoint(&reg.addr).base_url, format!("https://{}", reg.addr));
    c.push(&reference, &src, &img.manifest, &PushOptions::default())
        .expect("push over TLS with the CA");
    let pulled = c
        .pull(&reference, &dst, &PullOptions::default())
        .expect("pull over TLS with the CA");
    assert_eq!(pulled.digest, img.manifest);

    // Without it (a certs.d entry with no CA, or another registry's CA only): refused.
    let without = pki.certs_d(&reg.addr, &[]);
    let err = client(without.path())
        .pull(&reference, &dst, &PullOptions::default())
        .expect_err("pull without the CA");
    assert_tls_error(&err, &reg.addr, "pull without CA");
    let err = client(without.path())
        .push(&reference, &src, &img.manifest, &PushOptions::default())
        .expect_err("push without the CA");
    assert_tls_error(&err, &reg.addr, "push without CA");
    let elsewhere = pki.certs_d("127.0.0.1:1", &[("ca.crt", "ca.crt")]);
    std::fs::create_dir(elsewhere.path().join(&reg.addr)).expect("mkdir");
    let err = client(elsewhere.path())
        .pull(&reference, &dst, &PullOptions::default())
        .expect_err("another registry's CA does not count");
    assert_tls_error(&err, &reg.addr, "CA of another registry");
}

#[test]
fn registry_requiring_client_certificates() {
    let pki = Pki::new();
    let reg = pki.start_registry(true);
    let dir = tempfile::tempdir().expect("tempdir");
    let src = BlobStore::open(dir.path().join("src")).expect("store");
    let dst = BlobStore::open(dir.path().join("dst")).expect("store");
    let img = make_image(&src, "mtls", "amd64", 5_000);
    let reference = reg.reference("mtls/app:1");

    let ca_only = pki.certs_d(&reg.addr, &[("ca.crt", "ca.crt")]);
    let err = client(ca_only.path())
        .push(&reference, &src, &img.manifest, &PushOptions::default())
        .expect_err("push without a client certificate");
    // The server rejects the handshake ("received fatal alert: BadCertificate").
    assert_tls_error(&err, &reg.addr, "push without a client certificate");

    let with_pair = pki.certs_d(
        &reg.addr,
        &[
            ("ca.crt", "ca.crt"),
            ("client.cert", "client.crt"),
            ("client.key", "client.key"),
        ],
    );
    let c = client(with_pair.path());
    c.push(&reference, &src, &img.manifest, &PushOptions::default())
        .expect("push with the client certificate");
    let pulled = c
        .pull(&reference, &dst, &PullOptions::default())
        .expect("pull with the client certificate");
    assert_eq!(pulled.digest, img.manifest);

    // A key without its certificate is a configuration error naming the file.
    let broken = pki.certs_d(&reg.addr, &[("ca.crt", "ca.crt"), ("client.key", "client.key")]);
    let err = client(broken.path())
        .pull(&reference, &dst, &PullOptions::default())
        .expect_err("lone key");
    let msg = err.to_string();
    assert!(matches!(err, RegistryError::Certs { .. }), "{msg}");
    assert!(msg.contains("client.key") && msg.contains(&reg.addr), "{msg}");
}
