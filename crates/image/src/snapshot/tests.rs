//! Snapshotter bookkeeping (no mounts here; see tests/overlay.rs for those).

use std::fs;

use super::*;

pub(crate) fn layer_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, body) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_uid(nix::unistd::geteuid().as_raw().into());
        h.set_gid(nix::unistd::getegid().as_raw().into());
        b.append_data(&mut h, path, *body).unwrap();
    }
    b.into_inner().unwrap()
}

fn setup(n: usize) -> (tempfile::TempDir, Snapshotter, Vec<Layer>) {
    let tmp = tempfile::tempdir().unwrap();
    let content = ContentStore::open(tmp.path().join("content")).unwrap();
    let mut layers = Vec::new();
    for i in 0..n {
        let name = format!("layer{i}");
        let t = layer_tar(&[(&name, name.as_bytes())]);
        let blob = content.put(&t, None).unwrap();
        layers.push(Layer {
            diff_id: blob.clone(),
            blob,
        });
    }
    let s = Snapshotter::open(tmp.path().join("snap"), content, UnpackOptions::default()).unwrap();
    (tmp, s, layers)
}

#[test]
fn ensure_unpacks_each_chain_once() {
    let (_tmp, s, layers) = setup(3);
    let chains = s.ensure(&layers).unwrap();
    assert_eq!(
        chains,
        chain_ids(&layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>())
    );
    for (i, c) in chains.iter().enumerate() {
        let info = s.info(c).unwrap();
        assert_eq!(info.parent, i.checked_sub(1).map(|p| chains[p].clone()));
        assert!(s.snapshot_dir(c).join(format!("fs/layer{i}")).is_file());
    }
    // A second ensure unpacks nothing (the snapshot dirs are untouched).
    let before = std::fs::metadata(s.snapshot_dir(&chains[0]))
        .unwrap()
        .modified()
        .unwrap();
    s.ensure(&layers).unwrap();
    let after = std::fs::metadata(s.snapshot_dir(&chains[0]))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after);
    assert_eq!(s.list().unwrap().len(), 3);
    // Nothing left in staging.
    assert_eq!(
        std::fs::read_dir(s.root().join("staging")).unwrap().count(),
        0
    );
}

#[test]
fn concurrent_unpackers_of_one_chain() {
    let (_tmp, s, layers) = setup(2);
    let s = std::sync::Arc::new(s);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (s, layers) = (s.clone(), layers.clone());
            std::thread::spawn(move || s.ensure(&layers).unwrap())
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(results.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(s.list().unwrap().len(), 2);
    assert_eq!(
        std::fs::read_dir(s.root().join("staging")).unwrap().count(),
        0
    );
}

#[test]
fn wrong_diff_id_leaves_no_snapshot() {
    let (_tmp, s, mut layers) = setup(1);
    layers[0].diff_id = Digest::of(b"not this");
    let err = s.ensure(&layers).unwrap_err();
    assert!(
        matches!(
            err,
            SnapshotError::Unpack {
                source: UnpackError::DiffIdMismatch { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(s.list().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(s.root().join("staging")).unwrap().count(),
        0
    );
}

#[test]
fn prepare_returns_an_overlay_top_layer_first() {
    let (_tmp, s, layers) = setup(3);
    let mounts = s.prepare("c1", &layers, None, IdmapMode::Auto).unwrap();
    let chains = s.ensure(&layers).unwrap();
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].kind, "overlay");
    let lower = &mounts[0].options[0];
    let expected: Vec<String> = chains
        .iter()
        .rev()
        .map(|c| s.snapshot_dir(c).join("fs").display().to_string())
        .collect();
    assert_eq!(lower, &format!("lowerdir={}", expected.join(":")));
    assert!(
        mounts[0].options[1].starts_with("upperdir=")
            && mounts[0].options[1].ends_with("containers/c1/upper")
    );
    assert_eq!(s.mounts("c1").unwrap(), mounts);
    assert!(matches!(
        s.prepare("c1", &layers, None, IdmapMode::Auto),
        Err(SnapshotError::ContainerExists { .. })
    ));
    assert!(matches!(
        s.prepare("../x", &layers, None, IdmapMode::Auto),
        Err(SnapshotError::BadContainerId { .. })
    ));
}

#[test]
fn removal_respects_containers_and_children() {
    let (_tmp, s, layers) = setup(2);
    s.prepare("c1", &layers, None, IdmapMode::Auto).unwrap();
    let chains = s.ensure(&layers).unwrap();
    assert!(
        matches!(s.remove(&chains[1]), Err(SnapshotError::UsedByContainer { container, .. }) if container == "c1")
    );
    s.remove_container_layer("c1").unwrap();
    assert!(
        matches!(s.remove(&chains[0]), Err(SnapshotError::HasChild { child, .. }) if child == chains[1])
    );
    s.remove(&chains[1]).unwrap();
    s.remove(&chains[0]).unwrap();
    assert!(s.list().unwrap().is_empty());
    assert!(matches!(
        s.remove(&chains[0]),
        Err(SnapshotError::NotFound { .. })
    ));
}

#[test]
fn gc_keeps_live_chains_their_ancestors_and_containers() {
    let (_tmp, s, layers) = setup(3);
    let chains = s.ensure(&layers).unwrap();
    s.prepare("c1", &layers[..1], None, IdmapMode::Auto)
        .unwrap();
    let removed = s.gc(&[chains[1].clone()]).unwrap();
    assert_eq!(removed, vec![chains[2].clone()]);
    s.remove_container_layer("c1").unwrap();
    let mut removed = s.gc(&[]).unwrap();
    removed.sort();
    let mut expected = vec![chains[0].clone(), chains[1].clone()];
    expected.sort();
    assert_eq!(removed, expected);
}

#[test]
fn id_maps_parse_and_shift() {
    let m: IdMap = "0:100000:65536".parse().unwrap();
    assert_eq!(m.to_host(0), 100000);
    assert_eq!(m.to_host(1000), 101000);
    assert_eq!(m.to_host(70000), 100000 + 65534);
    assert_eq!(m.to_string(), "0:100000:65536");
    for bad in ["0:1", "a:b:c", "0:1:0", "0:4294967295:2", "1:2:3:4"] {
        assert!(bad.parse::<IdMap>().is_err(), "{bad}");
    }
}

#[test]
fn shifted_copies_keep_links_modes_whiteouts_and_xattrs() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: chown to other uids needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("su"), b"x").unwrap();
    std::os::unix::fs::chown(src.join("su"), Some(0), Some(0)).unwrap();
    fs::set_permissions(src.join("su"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::hard_link(src.join("su"), src.join("su2")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", src.join("l")).unwrap();
    std::os::unix::fs::lchown(src.join("l"), Some(1000), Some(1000)).unwrap();
    nix::sys::stat::mknod(
        &src.join("wh"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .unwrap();
    xattr::set(src.join("d"), "trusted.overlay.opaque", b"y").unwrap();
    let map: IdMap = "0:100000:65536".parse().unwrap();
    let dst = tmp.path().join("dst");
    assert_eq!(shift::shifted_copy(&src, &dst, &map).unwrap(), 6);
    let su = fs::metadata(dst.join("su")).unwrap();
    assert_eq!(
        (su.uid(), su.gid(), su.mode() & 0o7777),
        (100000, 100000, 0o4755)
    );
    assert_eq!(su.ino(), fs::metadata(dst.join("su2")).unwrap().ino());
    let l = fs::symlink_metadata(dst.join("l")).unwrap();
    assert_eq!(
        (l.uid(), fs::read_link(dst.join("l")).unwrap()),
        (101000, "/etc/passwd".into())
    );
    let wh = fs::symlink_metadata(dst.join("wh")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    assert_eq!(
        xattr::get(dst.join("d"), "trusted.overlay.opaque")
            .unwrap()
            .as_deref(),
        Some(&b"y"[..])
    );
    // The source is untouched.
    assert_eq!(fs::metadata(src.join("su")).unwrap().uid(), 0);
}

#[test]
fn compressed_blobs_are_keyed_by_their_diff_id() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let content = ContentStore::open(tmp.path().join("content")).unwrap();
    let t = layer_tar(&[("f", b"data")]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&t).unwrap();
    let zst = zstd::encode_all(&layer_tar(&[("g", b"more")])[..], 0).unwrap();
    let layers = vec![
        Layer {
            blob: content.put(&gz.finish().unwrap(), None).unwrap(),
            diff_id: Digest::of(&t),
        },
        Layer {
            blob: content.put(&zst, None).unwrap(),
            diff_id: Digest::of(&layer_tar(&[("g", b"more")])),
        },
    ];
    let s = Snapshotter::open(tmp.path().join("snap"), content, UnpackOptions::default()).unwrap();
    let chains = s.ensure(&layers).unwrap();
    assert_eq!(chains[0], layers[0].diff_id);
    assert!(s.snapshot_dir(&chains[1]).join("fs/g").is_file());
    assert_eq!(s.info(&chains[1]).unwrap().blob, layers[1].blob);
}
