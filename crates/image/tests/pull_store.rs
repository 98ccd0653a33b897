//! Pulls into an image store against a real (Debian) docker-registry on 127.0.0.1: unpacking
//! as docker does, one prune for blobs and snapshots, and concurrent pulls.

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{image_with_config, ingest_busybox, options, preflight, Registry, DOCKER_MANIFEST};
use hull_image::gc::gc_all;
use hull_image::layers::open_snapshotter;
use hull_image::registry::{pull_image, push, Platform, Progress, PullImageError};
use hull_image::{ContentStore, Digest, ImageStore, Reference};

fn amd64() -> Platform {
    "linux/amd64".parse().unwrap()
}

fn quiet(_: &Progress) {}

/// Pushes busybox to `reg` as `name`; returns the source store's image.
fn push_busybox(reg: &Registry, name: &str) -> (Reference, common::Image) {
    let cfg = tempfile::tempdir().unwrap();
    let t = tempfile::tempdir().unwrap();
    let s = ContentStore::open(t.path()).unwrap();
    let img = ingest_busybox(&s);
    let r = Reference::parse(&format!("{}/{name}", reg.host)).unwrap();
    push(&s, &img.manifest, &r, &[], &options(cfg.path()), &quiet).unwrap();
    (r, img)
}

#[test]
fn pull_unpacks_and_prune_frees_blobs_and_snapshots() {
    if !preflight() {
        return;
    }
    let reg = Registry::start(&[]);
    let (r, img) = push_busybox(&reg, "unpack/busybox:1");
    let cfg = tempfile::tempdir().unwrap();
    let t = tempfile::tempdir().unwrap();
    let images = ImageStore::open(t.path()).unwrap();
    let snap = open_snapshotter(&images, Default::default()).unwrap();
    let events = Mutex::new(Vec::new());
    let record = |p: &Progress| {
        events
            .lock()
            .unwrap()
            .push(serde_json::to_string(p).unwrap())
    };
    let out = pull_image(
        &images,
        Some(&snap),
        &r,
        &amd64(),
        &options(cfg.path()),
        &record,
    )
    .unwrap();
    let chains = out.unpack.expect("unpack asked for").unwrap();
    assert_eq!(chains.len(), 1);
    let fs = snap.snapshot_dir(&chains[0]).join("fs");
    assert!(fs.join("bin/busybox").is_file(), "{}", fs.display());
    assert_eq!(images.resolve(&r.familiar()).unwrap().id, out.record.id);

    // Docker's order: downloaded, extracted (with progress), complete, then the digest.
    let events = events.into_inner().unwrap();
    let short = img.layer.short();
    let pos = |want: &str| {
        events
            .iter()
            .position(|e| e.starts_with(want))
            .unwrap_or_else(|| panic!("{want} not in {events:#?}"))
    };
    let download = pos(&format!(r#"{{"status":"Download complete","id":"{short}"#));
    let extract = pos(r#"{"status":"Extracting","progressDetail":{"current":"#);
    let complete = pos(&format!(r#"{{"status":"Pull complete","id":"{short}"#));
    let digest = pos(r#"{"status":"Digest: "#);
    assert!(
        download < extract && extract < complete && complete < digest,
        "{events:#?}"
    );

    // Nothing to free while the image is there; everything once it is gone.
    let r0 = gc_all(&images, &snap).unwrap();
    assert!(r0.blobs.freed.is_empty() && r0.snapshots.is_empty());
    images.remove(&r.familiar(), false, &|_| false).unwrap();
    let r1 = gc_all(&images, &snap).unwrap();
    assert_eq!(r1.snapshots.len(), 1, "{r1:?}");
    assert!(r1.snapshot_bytes > 1 << 20, "{r1:?}");
    assert!(snap.list().unwrap().is_empty());
    assert!(images.content.list().unwrap().is_empty());
}

#[test]
fn two_pulls_of_one_image_into_one_store_both_succeed() {
    if !preflight() {
        return;
    }
    let reg = Registry::start(&[]);
    let (r, img) = push_busybox(&reg, "twice/busybox:1");
    let cfg = tempfile::tempdir().unwrap();
    let t = tempfile::tempdir().unwrap();
    for round in 0..3 {
        // Each thread opens the store itself, as two processes would.
        let results: Vec<_> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        let images = ImageStore::open(t.path()).unwrap();
                        let snap = open_snapshotter(&images, Default::default()).unwrap();
                        let mut opts = options(cfg.path());
                        opts.parallel = 1;
                        pull_image(&images, Some(&snap), &r, &amd64(), &opts, &quiet)
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let images = ImageStore::open(t.path()).unwrap();
        for res in results {
            let out = res.unwrap_or_else(|e| panic!("round {round}: {e}"));
            out.unpack.unwrap().unwrap();
            assert_eq!(out.pulled.manifest, img.manifest);
        }
        assert_eq!(images.content.list().unwrap().len(), 3, "round {round}");
        let ingest = std::fs::read_dir(images.content.root().join("ingest")).unwrap();
        assert_eq!(ingest.count(), 0, "round {round}: ingest leftovers");
        let snap = open_snapshotter(&images, Default::default()).unwrap();
        assert_eq!(snap.list().unwrap().len(), 1);
        // Start the next round from an empty store.
        images.remove(&r.familiar(), true, &|_| false).unwrap();
        images
            .remove(
                &format!("{}@{}", r.familiar_repository(), img.manifest),
                true,
                &|_| false,
            )
            .ok();
        gc_all(&images, &snap).unwrap();
        assert!(images.content.list().unwrap().is_empty());
    }
}

/// A two-layer image (busybox's layer and a small one) whose second layer is corrupt in the
/// registry: a pull commits the config and the busybox layer, then fails.
fn push_failing_image(reg: &Registry, name: &str, bb: &common::Image) -> (Reference, Digest) {
    let cfg = tempfile::tempdir().unwrap();
    let t = tempfile::tempdir().unwrap();
    let s = ContentStore::open(t.path()).unwrap();
    let bb_src = ingest_busybox(&s);
    assert_eq!(bb_src.layer, bb.layer);
    let mut small = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(5);
    h.set_mode(0o644);
    h.set_cksum();
    small.append_data(&mut h, "hello", &b"world"[..]).unwrap();
    let small = small.into_inner().unwrap();
    let small_digest = s.put(&small, None).unwrap();
    let mut config: serde_json::Value = serde_json::from_slice(&bb.config).unwrap();
    config["rootfs"]["diff_ids"] =
        serde_json::json!([bb.layer.to_string(), small_digest.to_string()]);
    config["comment"] = serde_json::json!("two layers");
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = s.put(&config, None).unwrap();
    let layer = |d: &Digest, size: usize| {
        format!(
            r#"{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar","size":{size},"digest":"{d}"}}"#
        )
    };
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":{},"digest":"{config_digest}"}},"layers":[{},{}]}}"#,
        config.len(),
        layer(&bb.layer, bb.layer_size as usize),
        layer(&small_digest, small.len())
    );
    let manifest = s.put(manifest.as_bytes(), None).unwrap();
    let r = Reference::parse(&format!("{}/{name}", reg.host)).unwrap();
    push(&s, &manifest, &r, &[], &options(cfg.path()), &quiet).unwrap();
    let data = reg.blob_data(&small_digest);
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();
    (r, config_digest)
}

#[test]
fn a_failed_pull_keeps_blobs_another_operation_relies_on() {
    if !preflight() {
        return;
    }
    let reg = Registry::start(&[]);
    let t0 = tempfile::tempdir().unwrap();
    let bb = ingest_busybox(&ContentStore::open(t0.path()).unwrap());
    let (r, failing_config) = push_failing_image(&reg, "fails/two:1", &bb);
    let cfg = tempfile::tempdir().unwrap();
    let t = tempfile::tempdir().unwrap();
    let images = ImageStore::open(t.path()).unwrap();

    // Another operation (a load, say) is under way: it holds the gc lock shared.
    let other = images.gc_lock(false).unwrap();
    let err = std::thread::scope(|s| {
        let h = s.spawn(|| {
            let mut opts = options(cfg.path());
            opts.parallel = 1; // config, busybox layer, then the corrupt one
            pull_image(&images, None, &r, &amd64(), &opts, &quiet)
        });
        // The pull commits the busybox layer, then fails on the corrupt layer...
        let start = Instant::now();
        while !images.content.exists(&bb.layer) {
            assert!(start.elapsed() < Duration::from_secs(30), "no download");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(300));
        // ...while the other operation finds that layer in the store and names its image.
        let a = image_with_config(
            &images.content,
            bb.config.clone(),
            bb.layer.clone(),
            bb.layer_size,
        );
        images.register(&a.manifest, None).unwrap();
        drop(other);
        h.join().unwrap().unwrap_err()
    });
    assert!(matches!(err, PullImageError::Pull(_)), "{err}");
    assert!(
        images.content.exists(&bb.layer),
        "the failed pull removed a blob in use"
    );
    assert!(
        !images.content.exists(&failing_config),
        "its own config is cleaned up"
    );
    images
        .resolve(&format!("sha256:{}", Digest::of(&bb.config).hex()))
        .unwrap();
}
