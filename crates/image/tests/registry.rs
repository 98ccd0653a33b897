//! The registry client against a real (Debian) docker-registry on 127.0.0.1.

mod common;

use std::sync::Mutex;

use common::{ingest_busybox, options, preflight, Registry, DOCKER_LIST, DOCKER_MANIFEST};
use hull_image::registry::{pull, push, Platform, Progress, RegistryError};
use hull_image::{ContentStore, Reference, StoreError};

fn amd64() -> Platform {
    "linux/amd64".parse().unwrap()
}

fn reference(reg: &Registry, name: &str) -> Reference {
    Reference::parse(&format!("{}/{name}", reg.host)).unwrap()
}

fn quiet(_: &Progress) {}

fn store() -> (tempfile::TempDir, ContentStore) {
    let t = tempfile::tempdir().unwrap();
    let s = ContentStore::open(t.path()).unwrap();
    (t, s)
}

#[test]
fn push_then_pull_into_a_fresh_store() {
    if !preflight() {
        return;
    }
    let reg = Registry::start(&[]);
    let cfg = tempfile::tempdir().unwrap();
    let mut opts = options(cfg.path());
    let (_t1, s1) = store();
    let img = ingest_busybox(&s1);

    // Chunked upload (PATCH) for the layer: chunks smaller than it.
    opts.chunk_size = 256 << 10;
    assert!(img.layer_size > opts.chunk_size);
    let r = reference(&reg, "hull/busybox:1");
    let pushed = push(&s1, &img.manifest, &r, &[], &opts, &quiet).unwrap();
    assert_eq!(pushed.digest, img.manifest);
    assert_eq!(
        (pushed.uploaded, pushed.mounted, pushed.existing),
        (2, 0, 0)
    );

    // Again: everything exists.
    let again = push(&s1, &img.manifest, &r, &[], &opts, &quiet).unwrap();
    assert_eq!((again.uploaded, again.existing), (0, 2));

    // Another repository of the same registry: blobs are mounted, not uploaded.
    let other = reference(&reg, "team/copy:latest");
    let mounted = push(
        &s1,
        &img.manifest,
        &other,
        &["hull/busybox".into()],
        &opts,
        &quiet,
    )
    .unwrap();
    assert_eq!((mounted.uploaded, mounted.mounted), (0, 2), "{mounted:?}");

    let (_t2, s2) = store();
    let events = Mutex::new(Vec::new());
    let record = |p: &Progress| {
        events
            .lock()
            .unwrap()
            .push(serde_json::to_string(p).unwrap())
    };
    let pulled = pull(&s2, &r, &amd64(), &opts, &record).unwrap();
    assert_eq!(pulled.manifest, img.manifest);
    assert_eq!(pulled.index, None);
    assert!(pulled.downloaded);
    let mut want = vec![
        img.manifest.clone(),
        img.layer.clone(),
        pulled.config.clone(),
    ];
    want.sort();
    assert_eq!(s2.list().unwrap(), want);
    for d in &want {
        s2.read(d).unwrap(); // verified against its digest
    }
    assert_eq!(s2.read(&pulled.config).unwrap(), img.config);
    let events = events.into_inner().unwrap();
    let short = img.layer.short();
    for want in [
        format!(r#"{{"status":"Pulling fs layer","id":"{short}"}}"#),
        format!(r#"{{"status":"Pull complete","id":"{short}"}}"#),
        format!(r#"{{"status":"Digest: {}"}}"#, img.manifest),
        format!(
            r#"{{"status":"Status: Downloaded newer image for {}"}}"#,
            r.familiar()
        ),
    ] {
        assert!(events.contains(&want), "{want} not in {events:#?}");
    }
    assert!(events
        .iter()
        .any(|e| e.starts_with(r#"{"status":"Downloading","progressDetail":{"current":"#)));

    // A second pull finds everything in place.
    let again = pull(&s2, &r, &amd64(), &opts, &quiet).unwrap();
    assert!(!again.downloaded);

    // By digest, from the mounted copy.
    let by_digest = Reference::parse(&format!("{}/team/copy@{}", reg.host, img.manifest)).unwrap();
    let (_t3, s3) = store();
    assert_eq!(
        pull(&s3, &by_digest, &amd64(), &opts, &quiet)
            .unwrap()
            .manifest,
        img.manifest
    );
}

#[test]
fn manifest_list_selects_the_platform() {
    if !preflight() {
        return;
    }
    let reg = Registry::start(&[]);
    let cfg = tempfile::tempdir().unwrap();
    let opts = options(cfg.path());
    let (_t1, s1) = store();
    let amd = ingest_busybox(&s1);
    let arm_config = String::from_utf8(amd.config.clone()).unwrap().replacen(
        r#""architecture":"amd64""#,
        r#""architecture":"arm64""#,
        1,
    );
    let arm = common::image_with_config(
        &s1,
        arm_config.into_bytes(),
        amd.layer.clone(),
        amd.layer_size,
    );
    assert_ne!(arm.manifest, amd.manifest);
    let entry = |m: &common::Image, arch: &str| {
        format!(
            r#"{{"mediaType":"{DOCKER_MANIFEST}","size":{},"digest":"{}","platform":{{"architecture":"{arch}","os":"linux"}}}}"#,
            m.manifest_bytes.len(),
            m.manifest
        )
    };
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{DOCKER_LIST}","manifests":[{},{}]}}"#,
        entry(&arm, "arm64"),
        entry(&amd, "amd64")
    );
    let index_digest = s1.put(index.as_bytes(), None).unwrap();
    let r = reference(&reg, "multi/busybox:latest");
    let pushed = push(&s1, &index_digest, &r, &[], &opts, &quiet).unwrap();
    assert_eq!(pushed.digest, index_digest);

    let (_t2, s2) = store();
    let pulled = pull(&s2, &r, &amd64(), &opts, &quiet).unwrap();
    assert_eq!(pulled.manifest, amd.manifest);
    assert_eq!(pulled.index, Some(index_digest.clone()));
    assert!(s2.exists(&index_digest) && s2.exists(&amd.manifest));
    assert!(!s2.exists(&arm.manifest));

    let (_t3, s3) = store();
    let arm64: Platform = "linux/arm64".parse().unwrap();
    assert_eq!(
        pull(&s3, &r, &arm64, &opts, &quiet).unwrap().manifest,
        arm.manifest
    );

    let (_t4, s4) = store();
    let s390x: Platform = "linux/s390x".parse().unwrap();
    let err = pull(&s4, &r, &s390x, &opts, &quiet).unwrap_err();
    let msg = err.to_string();
    eprintln!("error as shown: {msg}");
    assert!(matches!(err, RegistryError::NoPlatform { .. }), "{msg}");
    assert!(
        msg.contains("linux/s390x") && msg.contains("linux/arm64, linux/amd64"),
        "{msg}"
    );
    assert!(msg.contains("multi/busybox"), "{msg}");
    assert!(
        s4.list().unwrap().is_empty(),
        "a failed pull stores nothing"
    );
}

#[test]
fn htpasswd_registry_needs_credentials() {
    if !preflight() {
        return;
    }
    let reg = Registry::start(&[("alice", "s3cret")]);
    let with = tempfile::tempdir().unwrap();
    common::write_docker_config(with.path(), &reg.host, "alice", "s3cret");
    let without = tempfile::tempdir().unwrap();
    let wrong = tempfile::tempdir().unwrap();
    common::write_docker_config(wrong.path(), &reg.host, "alice", "guess");
    let (_t1, s1) = store();
    let img = ingest_busybox(&s1);
    let r = reference(&reg, "private/busybox:1");

    let err = push(
        &s1,
        &img.manifest,
        &r,
        &[],
        &options(without.path()),
        &quiet,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::Unauthorized {
                credentials_sent: false,
                ..
            }
        ),
        "{err}"
    );
    push(&s1, &img.manifest, &r, &[], &options(with.path()), &quiet).unwrap();

    let (_t2, s2) = store();
    let err = pull(&s2, &r, &amd64(), &options(without.path()), &quiet).unwrap_err();
    let msg = err.to_string();
    eprintln!("error as shown: {msg}");
    assert!(
        matches!(
            err,
            RegistryError::Unauthorized {
                credentials_sent: false,
                ..
            }
        ),
        "{msg}"
    );
    assert!(
        msg.contains("no credentials were sent") && msg.contains(&reg.host),
        "{msg}"
    );
    let err = pull(&s2, &r, &amd64(), &options(wrong.path()), &quiet).unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::Unauthorized {
                credentials_sent: true,
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.to_string().contains("guess"), "no secret in errors");
    assert!(s2.list().unwrap().is_empty());
    let pulled = pull(&s2, &r, &amd64(), &options(with.path()), &quiet).unwrap();
    assert_eq!(pulled.manifest, img.manifest);
}

#[test]
fn unknown_tag_and_repository_are_404s() {
    if !preflight() {
        return;
    }
    let reg = Registry::start(&[]);
    let cfg = tempfile::tempdir().unwrap();
    let opts = options(cfg.path());
    let (_t1, s1) = store();
    let img = ingest_busybox(&s1);
    push(
        &s1,
        &img.manifest,
        &reference(&reg, "known:1"),
        &[],
        &opts,
        &quiet,
    )
    .unwrap();
    for name in ["known:2", "unknown:latest"] {
        let (_t, s) = store();
        let err = pull(&s, &reference(&reg, name), &amd64(), &opts, &quiet).unwrap_err();
        let msg = err.to_string();
        eprintln!("error as shown: {msg}");
        assert!(
            matches!(err, RegistryError::ManifestUnknown { .. }),
            "{msg}"
        );
        assert!(
            msg.contains("manifest unknown") && msg.contains(name),
            "{msg}"
        );
    }
}

#[test]
fn interrupted_pull_resumes_and_verifies() {
    if !preflight() {
        return;
    }
    let reg = Registry::start(&[]);
    let cfg = tempfile::tempdir().unwrap();
    let opts = options(cfg.path());
    let (_t1, s1) = store();
    let img = ingest_busybox(&s1);
    let r = reference(&reg, "resume/busybox:1");
    push(&s1, &img.manifest, &r, &[], &opts, &quiet).unwrap();
    let layer = s1.read(&img.layer).unwrap();
    let half = layer.len() / 2;

    // A partial download of the first half, as an interrupted pull leaves it.
    let (_t2, s2) = store();
    let partial = s2
        .root()
        .join("ingest")
        .join(format!("{}.partial", img.layer.hex()));
    std::fs::write(&partial, &layer[..half]).unwrap();
    let firsts = Mutex::new(None);
    let watch = |p: &Progress| {
        if p.status == "Downloading" {
            let mut f = firsts.lock().unwrap();
            f.get_or_insert(p.progress_detail.as_ref().unwrap().current);
        }
    };
    let pulled = pull(&s2, &r, &amd64(), &opts, &watch).unwrap();
    assert_eq!(pulled.manifest, img.manifest);
    assert_eq!(s2.read(&img.layer).unwrap(), layer);
    assert!(
        firsts.into_inner().unwrap().unwrap() > half as u64,
        "the download went on from the partial"
    );
    assert!(!partial.exists());

    // A partial that is garbage: the verification fails, the download restarts cleanly.
    let (_t3, s3) = store();
    let partial = s3
        .root()
        .join("ingest")
        .join(format!("{}.partial", img.layer.hex()));
    std::fs::write(&partial, vec![0xAAu8; half]).unwrap();
    pull(&s3, &r, &amd64(), &opts, &quiet).unwrap();
    assert_eq!(s3.read(&img.layer).unwrap(), layer);

    // A server that ignores Range sends the whole blob: the part already there is skipped.
    let proxy = common::bearer::BearerGate::ignoring_range(&reg.host);
    let via = Reference::parse(&format!("{}/resume/busybox:1", proxy.host)).unwrap();
    let (_t4, s4) = store();
    let partial = s4
        .root()
        .join("ingest")
        .join(format!("{}.partial", img.layer.hex()));
    std::fs::write(&partial, &layer[..half]).unwrap();
    assert_eq!(
        pull(&s4, &via, &amd64(), &opts, &quiet).unwrap().manifest,
        img.manifest
    );
    assert_eq!(s4.read(&img.layer).unwrap(), layer);
    assert!(!partial.exists());
}

#[test]
fn corrupted_blob_fails_the_pull_and_stores_nothing() {
    if !preflight() {
        return;
    }
    let reg = Registry::start(&[]);
    let cfg = tempfile::tempdir().unwrap();
    let opts = options(cfg.path());
    let (_t1, s1) = store();
    let img = ingest_busybox(&s1);
    let r = reference(&reg, "corrupt/busybox:1");
    push(&s1, &img.manifest, &r, &[], &opts, &quiet).unwrap();
    let data = reg.blob_data(&img.layer);
    let mut bytes = std::fs::read(&data).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();

    let (_t2, s2) = store();
    let err = pull(&s2, &r, &amd64(), &opts, &quiet).unwrap_err();
    let msg = err.to_string();
    eprintln!("error as shown: {msg}");
    match &err {
        RegistryError::Verify { digest, cause, .. } => {
            assert_eq!(digest, &img.layer);
            assert!(
                matches!(**cause, StoreError::DigestMismatch { .. }),
                "{msg}"
            );
        }
        _ => panic!("want a verification error, got {msg}"),
    }
    assert!(
        msg.contains(&img.layer.to_string()) && msg.contains("corrupt/busybox"),
        "{msg}"
    );
    assert!(
        s2.list().unwrap().is_empty(),
        "no committed blob: {:?}",
        s2.list()
    );
    assert_eq!(
        std::fs::read_dir(s2.root().join("ingest")).unwrap().count(),
        0
    );
}

#[test]
fn bearer_token_auth_with_config_credentials() {
    if !preflight() {
        return;
    }
    let reg = Registry::start(&[]);
    let basic = hull_image::registry::Credentials {
        username: "bob".into(),
        password: "hunter2".into(),
    }
    .basic_header();
    let gate = common::bearer::BearerGate::start(&reg.host, basic);
    let with = tempfile::tempdir().unwrap();
    common::write_docker_config(with.path(), &gate.host, "bob", "hunter2");
    let without = tempfile::tempdir().unwrap();
    let (_t1, s1) = store();
    let img = ingest_busybox(&s1);
    let r = Reference::parse(&format!("{}/tok/busybox:1", gate.host)).unwrap();

    let pushed = push(&s1, &img.manifest, &r, &[], &options(with.path()), &quiet).unwrap();
    assert_eq!(pushed.digest, img.manifest);
    assert_eq!(
        gate.tokens.load(std::sync::atomic::Ordering::Relaxed),
        1,
        "one token, reused"
    );

    let (_t2, s2) = store();
    let err = pull(&s2, &r, &amd64(), &options(without.path()), &quiet).unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::Unauthorized {
                credentials_sent: false,
                ..
            }
        ),
        "{err}"
    );
    let pulled = pull(&s2, &r, &amd64(), &options(with.path()), &quiet).unwrap();
    assert_eq!(pulled.manifest, img.manifest);
    s2.read(&img.layer).unwrap();
}
