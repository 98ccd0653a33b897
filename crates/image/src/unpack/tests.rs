//! Unpack tests on archives built here. Ownership in the archives is the caller's, so they
//! pass without root; the few checks that need privileges say so and are skipped without it.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use super::*;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A tar archive builder with the caller's uid/gid on every entry.
struct Tar(tar::Builder<Vec<u8>>);

impl Tar {
    fn new() -> Tar {
        Tar(tar::Builder::new(Vec::new()))
    }
    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_uid(nix::unistd::geteuid().as_raw().into());
        h.set_gid(nix::unistd::getegid().as_raw().into());
        h.set_mtime(1_000_000);
        h
    }
    fn dir(mut self, path: &str) -> Tar {
        let mut h = Tar::header(tar::EntryType::Directory, 0o755, 0);
        self.0.append_data(&mut h, path, &[][..]).unwrap();
        self
    }
    fn file(self, path: &str, body: &[u8]) -> Tar {
        self.file_mode(path, body, 0o644)
    }
    fn file_mode(mut self, path: &str, body: &[u8], mode: u32) -> Tar {
        let mut h = Tar::header(tar::EntryType::Regular, mode, body.len() as u64);
        self.0.append_data(&mut h, path, body).unwrap();
        self
    }
    fn link(mut self, kind: tar::EntryType, path: &str, target: &str) -> Tar {
        let mut h = Tar::header(kind, 0o777, 0);
        self.0.append_link(&mut h, path, target).unwrap();
        self
    }
    fn node(mut self, kind: tar::EntryType, path: &str) -> Tar {
        let mut h = Tar::header(kind, 0o600, 0);
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
        self.0.append_data(&mut h, path, &[][..]).unwrap();
        self
    }
    fn xattrs(mut self, attrs: &[(&str, &[u8])]) -> Tar {
        let keys: Vec<(String, &[u8])> = attrs
            .iter()
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), *v))
            .collect();
        self.0
            .append_pax_extensions(keys.iter().map(|(k, v)| (k.as_str(), *v)))
            .unwrap();
        self
    }
    fn bytes(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

fn unpack_into(
    bytes: &[u8],
    opts: &UnpackOptions,
) -> (tempfile::TempDir, Result<UnpackReport, UnpackError>) {
    let dir = tempfile::tempdir().unwrap();
    let r = unpack(bytes, dir.path(), opts);
    (dir, r)
}

#[test]
fn files_dirs_symlinks_modes_and_mtimes() {
    let t = Tar::new()
        .dir("etc/")
        .file("etc/hostname", b"box\n")
        .file_mode("bin/su", b"#!", 0o4755)
        .link(tar::EntryType::Symlink, "etc/passwd-link", "/etc/passwd")
        .link(tar::EntryType::Symlink, "abs", "../../../../outside")
        .node(tar::EntryType::Fifo, "run/fifo")
        .bytes();
    let (d, r) = unpack_into(&t, &UnpackOptions::default());
    let r = r.unwrap();
    assert_eq!(r.entries, 6);
    assert_eq!(r.setuid, vec!["bin/su".to_string()]);
    let p = d.path();
    assert_eq!(fs::read(p.join("etc/hostname")).unwrap(), b"box\n");
    let m = fs::metadata(p.join("bin/su")).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o4755);
    assert_eq!(m.mtime(), 1_000_000);
    assert_eq!(fs::metadata(p.join("etc")).unwrap().mtime(), 1_000_000);
    // Symlinks are stored as is, dangling or pointing anywhere.
    assert_eq!(
        fs::read_link(p.join("etc/passwd-link")).unwrap().to_str(),
        Some("/etc/passwd")
    );
    assert_eq!(
        fs::read_link(p.join("abs")).unwrap().to_str(),
        Some("../../../../outside")
    );
    assert!(fs::symlink_metadata(p.join("run/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    let t = Tar::new()
        .dir("a/")
        .file("a/.wh.gone", b"")
        .file("a/kept", b"x")
        .bytes();
    let (d, r) = unpack_into(&t, &UnpackOptions::default());
    r.unwrap();
    let m = fs::symlink_metadata(d.path().join("a/gone")).unwrap();
    assert!(m.file_type().is_char_device());
    assert_eq!(m.rdev(), 0);
    assert!(!d.path().join("a/.wh.gone").exists());
    assert!(d.path().join("a/kept").exists());
}

#[test]
fn opaque_directories_get_the_overlay_xattr() {
    if !is_root() {
        eprintln!("skipped: trusted.* xattrs need CAP_SYS_ADMIN");
        return;
    }
    let t = Tar::new()
        .dir("d/")
        .file("d/.wh..wh..opq", b"")
        .file("d/new", b"n")
        .bytes();
    let (d, r) = unpack_into(&t, &UnpackOptions::default());
    r.unwrap();
    let v = xattr::get(d.path().join("d"), "trusted.overlay.opaque").unwrap();
    assert_eq!(v.as_deref(), Some(&b"y"[..]));
    assert!(!d.path().join("d/.wh..wh..opq").exists());
}

#[test]
fn hardlinks_inside_the_layer_only() {
    let t = Tar::new()
        .file("a", b"data")
        .link(tar::EntryType::Link, "b", "a")
        .link(tar::EntryType::Link, "c", "/a")
        .bytes();
    let (d, r) = unpack_into(&t, &UnpackOptions::default());
    r.unwrap();
    let ino = |n: &str| fs::metadata(d.path().join(n)).unwrap().ino();
    assert_eq!(ino("a"), ino("b"));
    assert_eq!(ino("a"), ino("c"));

    for target in ["../../x", "missing"] {
        let t = Tar::new().link(tar::EntryType::Link, "l", target).bytes();
        let (_d, r) = unpack_into(&t, &UnpackOptions::default());
        assert!(
            matches!(r, Err(UnpackError::HardlinkTarget { .. })),
            "{target}: {r:?}"
        );
    }
}

#[test]
fn xattrs_kept_or_dropped_by_namespace() {
    let t = Tar::new()
        .xattrs(&[
            ("user.note", b"hi"),
            ("trusted.evil", b"1"),
            ("security.selinux", b"x"),
        ])
        .file("f", b"")
        .bytes();
    let (d, r) = unpack_into(&t, &UnpackOptions::default());
    let r = r.unwrap();
    assert_eq!(
        xattr::get(d.path().join("f"), "user.note")
            .unwrap()
            .as_deref(),
        Some(&b"hi"[..])
    );
    assert_eq!(
        xattr::get(d.path().join("f"), "trusted.evil").unwrap(),
        None
    );
    assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
    assert!(r.warnings[0].contains("trusted.evil"));
}

#[test]
fn device_nodes_follow_the_policy() {
    let t = Tar::new().node(tar::EntryType::Char, "dev/null").bytes();
    let (d, r) = unpack_into(&t, &UnpackOptions::default());
    let r = r.unwrap();
    assert!(!d.path().join("dev/null").exists());
    assert!(r.warnings[0].contains("dev/null"), "{:?}", r.warnings);

    let refuse = UnpackOptions {
        devices: DevicePolicy::Refuse,
        ..Default::default()
    };
    let (_d, r) = unpack_into(&t, &refuse);
    assert!(matches!(r, Err(UnpackError::DeviceRefused { entry }) if entry == "dev/null"));

    if is_root() {
        let create = UnpackOptions {
            devices: DevicePolicy::Create,
            ..Default::default()
        };
        let (d, r) = unpack_into(&t, &create);
        r.unwrap();
        let m = fs::symlink_metadata(d.path().join("dev/null")).unwrap();
        assert!(m.file_type().is_char_device());
        assert_eq!(m.rdev(), nix::sys::stat::makedev(1, 3));
    }
}

#[test]
fn diff_id_is_computed_and_checked() {
    let t = Tar::new().file("f", b"content").bytes();
    let expected = Digest::of(&t);
    let (_d, r) = unpack_into(&t, &UnpackOptions::default());
    let r = r.unwrap();
    assert_eq!(r.diff_id.as_ref(), Some(&expected));
    assert_eq!(r.size, t.len() as u64);

    let wrong = UnpackOptions {
        expected_diff_id: Some(Digest::of(b"something else")),
        ..Default::default()
    };
    let (_d, r) = unpack_into(&t, &wrong);
    assert!(matches!(r, Err(UnpackError::DiffIdMismatch { actual, .. }) if actual == expected));
}

#[test]
fn gzip_and_zstd_layers() {
    let t = Tar::new().dir("x/").file("x/y", b"hello").bytes();
    let diff_id = Digest::of(&t);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&t).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&t[..], 3).unwrap();
    assert_eq!(detect(&gz), Ok(Compression::Gzip));
    assert_eq!(detect(&zst), Ok(Compression::Zstd));
    assert_eq!(detect(&t), Ok(Compression::None));
    for blob in [gz, zst] {
        let opts = UnpackOptions {
            expected_diff_id: Some(diff_id.clone()),
            expected_blob: Some(Digest::of(&blob)),
            ..Default::default()
        };
        let (d, r) = unpack_into(&blob, &opts);
        r.unwrap();
        assert_eq!(fs::read(d.path().join("x/y")).unwrap(), b"hello");
    }
    let bad = UnpackOptions {
        expected_blob: Some(Digest::of(b"no")),
        ..Default::default()
    };
    let (_d, r) = unpack_into(&t, &bad);
    assert!(matches!(r, Err(UnpackError::BlobDigestMismatch { .. })));
}

#[test]
fn chain_ids_follow_the_oci_definition() {
    let a: Digest = "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"
        .parse()
        .unwrap();
    let b: Digest = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
        .parse()
        .unwrap();
    let ids = chain_ids(&[a.clone(), b]);
    assert_eq!(ids[0], a);
    // printf 'sha256:a3ed... sha256:5f70...' | sha256sum
    assert_eq!(ids[1].to_string(), CHAIN_AB);
}

const CHAIN_AB: &str = "sha256:71dec89dc33c1a1cd5f73cd1e0885ec74b73b03fb9d5a98fddb6486563565072";
