//! Names, resolution, removal (Docker's rmi semantics) and garbage collection.

mod archive_common;

use std::path::Path;

use archive_common::*;
use hull_image::archive::{self, LoadOptions};
use hull_image::images::ErrorKind;
use hull_image::progress::NoProgress;
use hull_image::remove::DeleteItem;
use hull_image::{Digest, ImageError, ImageRecord, ImageStore};

fn load(s: &ImageStore, dir: &Path, imgs: &[TestImage]) -> Vec<ImageRecord> {
    let p = dir.join("in.tar");
    std::fs::write(&p, docker_archive(imgs, Layout::Blobs)).unwrap();
    archive::load_file(s, &p, &LoadOptions::default(), &NoProgress).unwrap()
}

fn img(tag: &str, label: &str, seeds: &[u8]) -> TestImage {
    let mut i = TestImage::new(tag, seeds.iter().map(|&s| layer(s, 2000, gzip)).collect());
    i.label = label.into();
    i
}

fn setup() -> (tempfile::TempDir, ImageStore) {
    let t = tempfile::tempdir().unwrap();
    let s = ImageStore::open(&t.path().join("store")).unwrap();
    (t, s)
}

const NOT_USED: &dyn Fn(&Digest) -> bool = &|_| false;

#[test]
fn resolve_by_name_digest_ref_id_and_prefix() {
    let (t, s) = setup();
    let rec = load(&s, t.path(), &[img("busybox:latest", "a", &[1])]).remove(0);
    for name in [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox:latest",
        "library/busybox",
    ] {
        assert_eq!(s.resolve(name).unwrap().id, rec.id, "{name}");
    }
    assert_eq!(s.resolve(&rec.id.to_string()).unwrap().id, rec.id);
    assert_eq!(s.resolve(rec.id.hex()).unwrap().id, rec.id);
    assert_eq!(s.resolve(&rec.id.hex()[..5]).unwrap().id, rec.id);
    assert!(matches!(
        s.resolve("busybox:1"),
        Err(ImageError::NotFound(_))
    ));
    assert!(matches!(s.resolve("nothex"), Err(ImageError::NotFound(_))));
    // a digest reference, as a pull records it
    let r = hull_image::Reference::parse(&format!("busybox@{}", rec.manifest)).unwrap();
    s.register(&rec.manifest, Some(&r)).unwrap();
    let got = s.resolve(&format!("busybox@{}", rec.manifest)).unwrap();
    assert_eq!(got.repo_digests, vec![format!("busybox@{}", rec.manifest)]);
    // a pull by tag records the tag and the digest
    let r = hull_image::Reference::parse(&format!("busybox:pulled@{}", rec.manifest)).unwrap();
    let got = s.register(&rec.manifest, Some(&r)).unwrap();
    assert!(
        got.repo_tags.contains(&"busybox:pulled".to_string()),
        "{got:?}"
    );
    assert_eq!(got.repo_digests, vec![format!("busybox@{}", rec.manifest)]);
}

#[test]
fn ambiguous_prefix_is_an_error() {
    let (t, s) = setup();
    // 17 images: two share a first hex digit
    let imgs: Vec<_> = (0..17)
        .map(|i| img(&format!("i{i}:1"), &format!("l{i}"), &[1]))
        .collect();
    let recs = load(&s, t.path(), &imgs);
    let mut firsts: Vec<char> = recs
        .iter()
        .map(|r| r.id.hex().chars().next().unwrap())
        .collect();
    firsts.sort();
    let dup = firsts.windows(2).find(|w| w[0] == w[1]).unwrap()[0];
    let err = s.resolve(&dup.to_string()).unwrap_err();
    assert!(matches!(err, ImageError::Ambiguous { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn tag_moves_and_untag() {
    let (t, s) = setup();
    let recs = load(
        &s,
        t.path(),
        &[img("a:1", "a", &[1]), img("b:1", "b", &[2])],
    );
    s.tag("a:1", "shared:x").unwrap();
    s.tag("b:1", "shared:x").unwrap();
    assert_eq!(s.resolve("shared:x").unwrap().id, recs[1].id);
    assert_eq!(s.resolve("a:1").unwrap().repo_tags, vec!["a:1"]);
    assert!(matches!(
        s.tag("a:1", &format!("a@{}", recs[0].id)),
        Err(ImageError::TagIsDigest(_))
    ));
    assert_eq!(s.untag("shared:x").unwrap(), "shared:x");
    assert!(s.resolve("shared:x").is_err());
    assert!(
        s.resolve(&recs[1].id.to_string()).is_ok(),
        "untag keeps the image"
    );
}

#[test]
fn remove_semantics_like_docker() {
    let (t, s) = setup();
    let rec = load(&s, t.path(), &[img("app:1", "a", &[1, 2])]).remove(0);
    s.tag("app:1", "app:2").unwrap();
    s.tag("app:1", "other:1").unwrap();
    // by ID with tags in several repositories: needs force
    let err = s.remove(rec.id.short(), false, NOT_USED).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    // by name: just untags
    assert_eq!(
        s.remove("app:2", false, NOT_USED).unwrap(),
        vec![DeleteItem::Untagged("app:2".into())]
    );
    assert_eq!(
        s.remove("other:1", false, NOT_USED).unwrap(),
        vec![DeleteItem::Untagged("other:1".into())]
    );
    // last name, image used by a container: conflict unless forced
    let used = |d: &Digest| *d == rec.id;
    let err = s.remove("app:1", false, &used).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.to_string().contains("must force"), "{err}");
    let err = s.remove(&rec.id.to_string(), false, &used).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    // by ID with one tag: untag and delete, blobs freed
    let items = s.remove(rec.id.short(), false, NOT_USED).unwrap();
    assert_eq!(
        items,
        vec![
            DeleteItem::Untagged("app:1".into()),
            DeleteItem::Deleted(rec.id.clone())
        ]
    );
    assert!(s.list().unwrap().is_empty());
    assert!(
        s.content.list().unwrap().is_empty(),
        "its blobs went with it"
    );
    assert_eq!(
        s.remove("app:1", false, NOT_USED).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn force_removes_all_names_and_keeps_shared_layers() {
    let (t, s) = setup();
    let recs = load(
        &s,
        t.path(),
        &[img("a:1", "a", &[1, 2]), img("b:1", "b", &[1, 3])],
    );
    s.tag("a:1", "c:1").unwrap();
    let used = |_: &Digest| true;
    let items = s.remove(recs[0].id.short(), true, &used).unwrap();
    assert_eq!(items.len(), 3, "{items:?}");
    let b = s.resolve("b:1").unwrap();
    for d in b.layers.iter().chain([&b.id, &b.manifest]) {
        assert!(s.content.exists(d), "b's blob {d} kept");
    }
    assert!(!s.content.exists(&recs[0].layers[1]));
}

#[test]
fn gc_frees_exactly_the_unreferenced_blobs() {
    let (t, s) = setup();
    let recs = load(
        &s,
        t.path(),
        &[img("a:1", "a", &[1, 2]), img("b:1", "b", &[2, 3])],
    );
    let stray = s.content.put(b"nobody uses me", None).unwrap();
    let ingest = s.content.root().join("ingest");
    // a dead writer's leftovers go (pid 2^22+1 is above any pid_max); a resumable download stays
    std::fs::write(ingest.join("4194305-123-0.tmp"), b"x").unwrap();
    std::fs::write(ingest.join("load-4194305-2026.tar"), b"x").unwrap();
    std::fs::write(ingest.join(format!("{}.partial", stray.hex())), b"x").unwrap();
    let before: Vec<Digest> = s.content.list().unwrap();
    // drop image a from the index only, as a crash between untag and blob removal would
    s.untag("a:1").unwrap();
    let r = s.gc().unwrap();
    assert_eq!(
        r.freed.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>(),
        vec![stray.clone()]
    );
    assert_eq!(r.freed_bytes, 14);
    assert_eq!(r.live_chains.len(), 2);
    assert_eq!(r.stale_ingest.len(), 2, "{:?}", r.stale_ingest);
    assert_eq!(
        std::fs::read_dir(&ingest).unwrap().count(),
        1,
        "the .partial is kept"
    );
    assert_eq!(s.content.list().unwrap().len(), before.len() - 1);
    s.remove(recs[0].id.hex(), false, NOT_USED).unwrap();
    let r = s.gc().unwrap();
    assert!(r.freed.is_empty(), "rmi already freed a's own blobs");
    let b = &recs[1];
    let mut live: Vec<Digest> = b
        .layers
        .iter()
        .chain([&b.id, &b.manifest])
        .cloned()
        .collect();
    live.sort();
    assert_eq!(s.content.list().unwrap(), live);
}

#[test]
fn index_survives_reopen_and_inspect_fields() {
    let (t, s) = setup();
    let rec = load(&s, t.path(), &[img("a:1", "a", &[1, 2])]).remove(0);
    let s2 = ImageStore::open(&t.path().join("store")).unwrap();
    assert_eq!(s2.resolve("a:1").unwrap(), rec);
    let i = s2.inspect("a:1").unwrap();
    let v = serde_json::to_value(&i).unwrap();
    for k in [
        "Id",
        "RepoTags",
        "RepoDigests",
        "Created",
        "Size",
        "Architecture",
        "Os",
        "Config",
        "RootFS",
        "Metadata",
    ] {
        assert!(v.get(k).is_some(), "inspect has {k}");
    }
    assert_eq!(v["RootFS"]["Type"], "layers");
    assert_eq!(v["RootFS"]["Layers"].as_array().unwrap().len(), 2);
    assert_eq!(v["Config"]["Labels"]["test"], "a");
    let h = s2.history("a:1").unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[0].id, rec.id.to_string());
    assert_eq!(h[0].created_by, "layer 1");
    assert_eq!(h[1].id, "<missing>");
    assert_eq!(h[0].created, 1704164645);
}
