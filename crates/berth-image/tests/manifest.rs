//! Manifest/index/config parsing, validation and platform selection.

use berth_image::manifest::{self, Document, ManifestError, Platform};

const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

fn manifest_json(media_type: Option<&str>, config_type: &str, layer_type: &str) -> Vec<u8> {
    let mut m = serde_json::json!({
        "schemaVersion": 2,
        "config": {"mediaType": config_type, "digest": D1, "size": 10},
        "layers": [{"mediaType": layer_type, "digest": D2, "size": 20}],
    });
    if let Some(t) = media_type {
        m["mediaType"] = t.into();
    }
    serde_json::to_vec(&m).expect("json")
}

#[test]
fn parses_oci_and_docker_manifests() {
    for (mt, ct, lt) in [
        (
            Some(manifest::OCI_MANIFEST),
            manifest::OCI_CONFIG,
            manifest::OCI_LAYER_GZIP,
        ),
        (None, manifest::OCI_CONFIG, manifest::OCI_LAYER_ZSTD),
        (
            Some(manifest::DOCKER_MANIFEST),
            manifest::DOCKER_CONFIG,
            manifest::DOCKER_LAYER_GZIP,
        ),
    ] {
        let bytes = manifest_json(mt, ct, lt);
        let Document::Manifest(m) = manifest::parse(&bytes, None, "m").expect("parse") else {
            panic!("expected a manifest");
        };
        assert_eq!(m.layers().len(), 1);
        assert_eq!(
            manifest::descriptor_digest(m.config(), "m")
                .expect("digest")
                .to_string(),
            D1
        );
    }
}

#[test]
fn rejects_bad_manifests_with_named_object() {
    let schema1 = br#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#;
    let err = manifest::parse(schema1, None, "sha256:abc").expect_err("schema1");
    assert!(matches!(err, ManifestError::Schema1 { .. }), "{err}");
    assert!(err.to_string().contains("unsupported") && err.to_string().contains("sha256:abc"));

    let signed = br#"{"schemaVersion":1}"#;
    assert!(matches!(
        manifest::parse(signed, Some(manifest::DOCKER_SCHEMA1_SIGNED), "s"),
        Err(ManifestError::Schema1 { .. })
    ));

    let big = vec![b' '; manifest::MAX_DOCUMENT_SIZE as usize + 1];
    let err = manifest::parse(&big, None, "huge").expect_err("too large");
    assert!(matches!(err, ManifestError::TooLarge { .. }) && err.to_string().contains("huge"));

    let not_image = manifest_json(
        Some(manifest::OCI_MANIFEST),
        "application/vnd.example+json",
        manifest::OCI_LAYER_TAR,
    );
    let err = manifest::parse(&not_image, None, "art").expect_err("artifact");
    assert!(
        err.to_string().contains("art") && err.to_string().contains("vnd.example"),
        "{err}"
    );

    let bad_layer = manifest_json(None, manifest::OCI_CONFIG, "application/x-foo");
    assert!(manifest::parse(&bad_layer, None, "l").is_err());

    let unknown = br#"{"schemaVersion":2,"mediaType":"text/plain"}"#;
    assert!(matches!(
        manifest::parse(unknown, None, "u"),
        Err(ManifestError::UnsupportedMediaType { .. })
    ));
    assert!(matches!(
        manifest::parse(b"{", None, "j"),
        Err(ManifestError::Json { .. })
    ));
}

#[test]
fn config_needs_layers_rootfs() {
    let ok = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"container_config":{}}"#;
    manifest::parse_config(ok, "c").expect("docker-style config with extra fields");
    let bad = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:xyz"]}}"#;
    let err = manifest::parse_config(bad, "cfg").expect_err("bad diffID");
    assert!(err.to_string().contains("cfg"), "{err}");
}

fn index(entries: &[(&str, &str, Option<&str>, &str)]) -> Vec<u8> {
    let manifests: Vec<_> = entries
        .iter()
        .map(|(os, arch, variant, digest)| {
            let mut p = serde_json::json!({"os": os, "architecture": arch});
            if let Some(v) = variant {
                p["variant"] = (*v).into();
            }
            serde_json::json!({"mediaType": manifest::OCI_MANIFEST, "digest": digest, "size": 1, "platform": p})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": manifests})).expect("json")
}

#[test]
fn selects_platform_with_variant_rules() {
    let d3 = "sha256:3333333333333333333333333333333333333333333333333333333333333333";
    let bytes = index(&[
        ("unknown", "unknown", None, D1),
        ("linux", "arm", Some("v6"), D1),
        ("linux", "arm", Some("v7"), D2),
        ("linux", "arm64", None, d3),
        ("linux", "amd64", None, D2),
    ]);
    let Document::Index(idx) = manifest::parse(&bytes, None, "idx").expect("parse") else {
        panic!("expected index");
    };
    let pick = |p: &str| {
        manifest::select_manifest(&idx, &Platform::parse(p).expect("platform"), "idx").map(|d| d.digest().to_string())
    };
    assert_eq!(pick("linux/amd64").expect("amd64"), D2);
    assert_eq!(pick("linux/arm/v7").expect("armv7"), D2);
    assert_eq!(pick("linux/arm/v6").expect("armv6"), D1);
    // arm64 with no variant in the index is arm64/v8.
    assert_eq!(pick("linux/arm64/v8").expect("arm64"), d3);
    let err = pick("linux/ppc64le").expect_err("none");
    assert!(err.to_string().contains("linux/arm/v7"), "{err}");
    assert_eq!(Platform::host().os, "linux");
}

#[test]
fn os_version_prefix_matching() {
    let mut want = Platform::parse("windows/amd64").expect("platform");
    want.os_version = Some("10.0.17763".into());
    let mut have = want.clone();
    have.os_version = Some("10.0.17763.1234".into());
    assert!(want.matches(&have));
    have.os_version = Some("10.0.20348.1".into());
    assert!(!want.matches(&have));
}
