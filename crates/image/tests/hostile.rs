//! Hostile layer archives: every escape attempt must be refused or neutralised, and nothing
//! outside the snapshot may change (a marker host directory is listed and hashed before and
//! after each attempt; /etc/shadow's content, link count and times are compared too).
//! Archives are written header by header, so names the `tar` crate would refuse to build
//! (absolute, `..`, over-long) reach the unpacker as an attacker would send them.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hull_image::snapshot::{mount_to, unmount, IdmapMode, Layer, Snapshotter};
use hull_image::unpack::{unpack, UnpackError, UnpackOptions, UnpackReport};
use hull_image::{ContentStore, Digest};
use tar::EntryType;

/// A host directory that must stay exactly as it was.
struct Marker {
    dir: tempfile::TempDir,
    before: BTreeMap<String, String>,
    shadow: Option<(Digest, u64, i64)>,
}

fn fingerprint(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let md = fs::symlink_metadata(&d).unwrap();
        let opaque = xattr::get(&d, "trusted.overlay.opaque").ok().flatten();
        out.insert(
            d.display().to_string(),
            format!("dir {:o} {opaque:?}", md.mode()),
        );
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let md = fs::symlink_metadata(&p).unwrap();
            if md.is_dir() {
                stack.push(p);
            } else {
                let body = fs::read(&p)
                    .map(|b| Digest::of(&b).to_string())
                    .unwrap_or_default();
                out.insert(
                    p.display().to_string(),
                    format!("{:o} {} {} {body}", md.mode(), md.uid(), md.nlink()),
                );
            }
        }
    }
    out
}

fn shadow() -> Option<(Digest, u64, i64)> {
    let md = fs::metadata("/etc/shadow").ok()?;
    Some((
        Digest::of(&fs::read("/etc/shadow").ok()?),
        md.nlink(),
        md.mtime(),
    ))
}

impl Marker {
    fn new() -> Marker {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("file"), b"host data").unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("sub/inner"), b"more").unwrap();
        let before = fingerprint(dir.path());
        Marker {
            dir,
            before,
            shadow: shadow(),
        }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn assert_untouched(&self) {
        assert_eq!(
            fingerprint(self.path()),
            self.before,
            "the host marker directory changed"
        );
        assert_eq!(shadow(), self.shadow, "/etc/shadow changed");
    }
}

/// Tar entries with raw names, GNU long-name records for names over 99 bytes.
struct Raw(Vec<u8>);

impl Raw {
    fn new() -> Raw {
        Raw(Vec::new())
    }
    fn header(kind: EntryType, name: &[u8], link: &[u8], size: usize, mode: u32) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size as u64);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        let old = h.as_old_mut();
        old.name[..name.len().min(99)].copy_from_slice(&name[..name.len().min(99)]);
        old.linkname[..link.len().min(99)].copy_from_slice(&link[..link.len().min(99)]);
        h.set_cksum();
        h
    }
    fn block(&mut self, h: &tar::Header, body: &[u8]) {
        self.0.extend_from_slice(h.as_bytes());
        self.0.extend_from_slice(body);
        let pad = (512 - body.len() % 512) % 512;
        self.0.extend(std::iter::repeat_n(0u8, pad));
    }
    fn entry(mut self, kind: EntryType, name: &str, link: &str, body: &[u8], mode: u32) -> Raw {
        for (long, kind, value) in [
            (name.len() > 99, EntryType::GNULongName, name),
            (link.len() > 99, EntryType::GNULongLink, link),
        ] {
            if long {
                let mut v = value.as_bytes().to_vec();
                v.push(0);
                let h = Raw::header(kind, b"././@LongLink", b"", v.len(), 0o644);
                self.block(&h, &v);
            }
        }
        let h = Raw::header(kind, name.as_bytes(), link.as_bytes(), body.len(), mode);
        self.block(&h, body);
        self
    }
    fn file(self, name: &str, body: &[u8]) -> Raw {
        self.entry(EntryType::Regular, name, "", body, 0o644)
    }
    fn dir(self, name: &str) -> Raw {
        self.entry(EntryType::Directory, name, "", b"", 0o755)
    }
    fn symlink(self, name: &str, target: &str) -> Raw {
        self.entry(EntryType::Symlink, name, target, b"", 0o777)
    }
    fn hardlink(self, name: &str, target: &str) -> Raw {
        self.entry(EntryType::Link, name, target, b"", 0o644)
    }
    fn bytes(mut self) -> Vec<u8> {
        self.0.extend(std::iter::repeat_n(0u8, 1024));
        self.0
    }
}

fn run(t: Vec<u8>) -> (tempfile::TempDir, Result<UnpackReport, UnpackError>) {
    let d = tempfile::tempdir().unwrap();
    let r = unpack(&t[..], d.path(), &UnpackOptions::default());
    (d, r)
}

fn host(m: &Marker) -> String {
    m.path().display().to_string()
}

#[test]
fn absolute_names_land_inside_the_snapshot() {
    let m = Marker::new();
    let t = Raw::new()
        .file(&format!("{}/planted", host(&m)), b"x")
        .file("/abs", b"y")
        .bytes();
    let (d, r) = run(t);
    let r = r.unwrap();
    assert!(d.path().join(format!(".{}/planted", host(&m))).is_file());
    assert!(d.path().join("abs").is_file());
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("/abs") && w.contains("absolute")),
        "{:?}",
        r.warnings
    );
    m.assert_untouched();
}

#[test]
fn dot_dot_components_are_refused() {
    let m = Marker::new();
    let depth = "../".repeat(20);
    for name in [
        format!("{depth}{}/pwned", host(&m).trim_start_matches('/')),
        "a/../../pwned".into(),
        "..".into(),
    ] {
        let (_d, r) = run(Raw::new().file(&name, b"x").bytes());
        assert!(
            matches!(&r, Err(UnpackError::UnsafePath { entry, .. }) if *entry == name),
            "{name}: {r:?}"
        );
    }
    m.assert_untouched();
}

#[test]
fn writes_through_a_symlink_in_the_same_layer_are_refused() {
    let m = Marker::new();
    let cases = [
        Raw::new()
            .symlink("evil", &host(&m))
            .file("evil/pwned", b"x"),
        Raw::new()
            .symlink("evil", &host(&m))
            .file("evil/file", b"overwritten"),
        Raw::new()
            .symlink("evil", &host(&m))
            .file("evil/.wh.file", b""),
        Raw::new()
            .symlink("evil", &host(&m))
            .file("evil/.wh..wh..opq", b""),
        Raw::new().symlink("evil", &host(&m)).dir("evil/sub/"),
        Raw::new()
            .symlink("rel", "../../../../../../../..")
            .file(&format!("rel{}/pwned", host(&m)), b"x"),
        // A directory replaced by a symlink, then written under.
        Raw::new()
            .dir("d/")
            .file("d/f", b"1")
            .symlink("d", &host(&m))
            .file("d/pwned", b"x"),
    ];
    for (i, t) in cases.into_iter().enumerate() {
        let (_d, r) = run(t.bytes());
        assert!(
            matches!(r, Err(UnpackError::ThroughSymlink { .. })),
            "case {i}: {r:?}"
        );
        m.assert_untouched();
    }
}

#[test]
fn hardlinks_out_of_the_layer_are_refused() {
    let m = Marker::new();
    let cases = [
        ("shadow", "/etc/shadow".to_string()),
        ("shadow", "etc/shadow".to_string()),
        ("x", "../../x".to_string()),
        ("x", format!("{}/file", host(&m))),
    ];
    for (name, target) in cases {
        let (_d, r) = run(Raw::new().hardlink(name, &target).bytes());
        assert!(
            matches!(r, Err(UnpackError::HardlinkTarget { .. })),
            "{target}: {r:?}"
        );
    }
    // Through a symlink planted in the layer.
    let (_d, r) = run(Raw::new()
        .symlink("s", "/etc")
        .hardlink("h", "s/shadow")
        .bytes());
    assert!(
        matches!(r, Err(UnpackError::HardlinkTarget { .. })),
        "{r:?}"
    );
    m.assert_untouched();
}

#[test]
fn very_long_paths_stay_inside() {
    let m = Marker::new();
    let comp = "d".repeat(200);
    let long = vec![comp.as_str(); 30].join("/");
    let (d, r) = run(Raw::new().file(&format!("{long}/f"), b"deep").bytes());
    r.unwrap();
    // Walk it back fd by fd (the full path is longer than PATH_MAX).
    let mut dir = fs::File::open(d.path()).unwrap();
    for _ in 0..30 {
        dir = fs::File::open(format!(
            "/proc/self/fd/{}/{comp}",
            std::os::fd::AsRawFd::as_raw_fd(&dir)
        ))
        .unwrap();
    }
    let f = format!("/proc/self/fd/{}/f", std::os::fd::AsRawFd::as_raw_fd(&dir));
    assert_eq!(fs::read(f).unwrap(), b"deep");
    let (_d, r) = run(Raw::new().file(&"n".repeat(300), b"x").bytes());
    assert!(
        matches!(&r, Err(UnpackError::Write { entry, .. }) if entry.len() == 300),
        "{r:?}"
    );
    m.assert_untouched();
}

#[test]
fn setuid_files_are_kept_and_recorded_and_devices_skipped() {
    let m = Marker::new();
    let t = Raw::new()
        .entry(EntryType::Regular, "bin/su", "", b"elf", 0o4755)
        .entry(EntryType::Regular, "bin/wall", "", b"elf", 0o2755)
        .entry(EntryType::Block, "dev/sda", "", b"", 0o660)
        .entry(EntryType::Char, "dev/mem", "", b"", 0o660)
        .bytes();
    let (d, r) = run(t);
    let r = r.unwrap();
    assert_eq!(r.setuid, ["bin/su", "bin/wall"]);
    assert_eq!(
        fs::metadata(d.path().join("bin/su"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o4755
    );
    assert!(!d.path().join("dev/sda").exists() && !d.path().join("dev/mem").exists());
    assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
    m.assert_untouched();
}

/// Removes a mount when dropped.
struct Mounted(PathBuf);
impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = unmount(&self.0);
    }
}

#[test]
fn symlink_planted_by_a_lower_layer_is_not_followed() {
    let m = Marker::new();
    let tmp = tempfile::tempdir().unwrap();
    let content = ContentStore::open(tmp.path().join("content")).unwrap();
    let lower = Raw::new().symlink("evil", &host(&m)).bytes();
    let upper = Raw::new()
        .file("evil/pwned", b"x")
        .file("evil/file", b"overwritten")
        .bytes();
    let layers: Vec<Layer> = [lower, upper]
        .iter()
        .map(|t| {
            let blob = content.put(t, None).unwrap();
            Layer {
                diff_id: blob.clone(),
                blob,
            }
        })
        .collect();
    let s = Snapshotter::open(tmp.path().join("snap"), content, UnpackOptions::default()).unwrap();
    let chains = s.ensure(&layers).unwrap();
    m.assert_untouched();
    // Each layer only ever writes its own directory: the upper one has a real evil/.
    let low = s.snapshot_dir(&chains[0]).join("fs/evil");
    assert_eq!(fs::read_link(&low).unwrap(), m.path());
    let up = s.snapshot_dir(&chains[1]).join("fs/evil");
    assert!(fs::symlink_metadata(&up).unwrap().is_dir());
    assert_eq!(fs::read(up.join("file")).unwrap(), b"overwritten");
    if nix::unistd::geteuid().is_root() {
        // In the merged view the upper directory hides the lower symlink.
        let mounts = s.prepare("c1", &layers, None, IdmapMode::Auto).unwrap();
        let target = tmp.path().join("rootfs");
        fs::create_dir(&target).unwrap();
        mount_to(&mounts[0], &target).unwrap();
        let _g = Mounted(target.clone());
        assert!(fs::symlink_metadata(target.join("evil")).unwrap().is_dir());
        fs::write(target.join("evil/from-container"), b"c").unwrap();
    }
    m.assert_untouched();
}

#[test]
fn whiteouts_of_dot_and_dot_dot_are_refused() {
    let m = Marker::new();
    for name in ["a/.wh..", "a/.wh..."] {
        let t = Raw::new()
            .dir("a/")
            .file("a/keep", b"k")
            .file("keep2", b"k")
            .file(name, b"")
            .bytes();
        let (d, r) = run(t);
        assert!(
            matches!(&r, Err(UnpackError::UnsafePath { entry, .. }) if entry == name),
            "{name}: {r:?}"
        );
        assert!(d.path().join("a/keep").is_file() && d.path().join("keep2").is_file());
    }
    // The root named as a symlink or file is left out, with a warning.
    let (d, r) = run(Raw::new()
        .symlink(".", &host(&m))
        .symlink("/", "/")
        .file("f", b"x")
        .bytes());
    let r = r.unwrap();
    assert_eq!(
        r.warnings
            .iter()
            .filter(|w| w.contains("names the root"))
            .count(),
        2,
        "{:?}",
        r.warnings
    );
    assert!(d.path().join("f").is_file());
    m.assert_untouched();
}

#[test]
fn the_marker_notices_a_change() {
    let m = Marker::new();
    fs::write(m.path().join("sub/inner"), b"changed").unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| m.assert_untouched()));
    assert!(r.is_err(), "a changed marker directory went unnoticed");
}
