//! The archive and name subcommands end to end, on a rootfs tarball made with tar(1).
//! Needs no root: without it, layers are not unpacked (`--no-unpack`; unpacking sets owners).

use std::path::Path;
use std::process::{Command, Output};

fn hull(root: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_hull-image"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .unwrap();
    eprintln!(
        "hull-image {args:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
}

/// `args` with `--no-unpack` after the subcommand when not root.
fn with<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut v = args.to_vec();
    if !is_root() {
        v.insert(1, "--no-unpack");
    }
    v
}

fn ok(root: &Path, args: &[&str]) -> String {
    let out = hull(root, args);
    assert!(out.status.success(), "hull-image {args:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn import_tag_inspect_save_load_rmi_prune() {
    let t = tempfile::tempdir().unwrap();
    let rootfs = t.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::write(rootfs.join("bin/hello"), b"#!/bin/sh\necho hello\n").unwrap();
    let tarball = t.path().join("rootfs.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let root = t.path().join("store");
    let id = ok(
        &root,
        &with(&[
            "import",
            tarball.to_str().unwrap(),
            "hello:1",
            "--change",
            "CMD [\"/bin/hello\"]",
            "-c",
            "ENV GREETING=hi",
        ]),
    );
    let id = id.trim().to_string();
    assert!(id.starts_with("sha256:"), "{id}");
    ok(&root, &["tag", "hello:1", "example.com/hello:2"]);
    let images = ok(&root, &["images"]);
    assert!(images.starts_with("REPOSITORY"), "{images}");
    assert!(
        images.contains("example.com/hello") && images.contains(&id[7..19]),
        "{images}"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&ok(&root, &["inspect", "hello:1"])).unwrap();
    assert_eq!(inspect[0]["Id"], id.as_str());
    assert_eq!(inspect[0]["Config"]["Cmd"][0], "/bin/hello");
    assert_eq!(inspect[0]["RepoTags"].as_array().unwrap().len(), 2);
    assert!(ok(&root, &["history", "hello:1"]).contains("Imported from"));

    let archive = t.path().join("saved.tar");
    ok(&root, &["save", "-o", archive.to_str().unwrap(), "hello:1"]);
    let root2 = t.path().join("store2");
    let mut load = with(&["load", "-i"]);
    load.push(archive.to_str().unwrap());
    let loaded = ok(&root2, &load);
    assert_eq!(loaded, "Loaded image: hello:1\n");
    assert_eq!(ok(&root2, &["images", "-q", "--no-trunc"]).trim(), id);

    // two names in two repositories: removing by ID needs -f
    let out = hull(&root, &["rmi", &id[7..19]]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("must force"));
    let rmi = ok(&root, &["rmi", "-f", &id[7..19]]);
    assert!(
        rmi.contains("Untagged: hello:1") && rmi.contains(&format!("Deleted: {id}")),
        "{rmi}"
    );
    assert_eq!(ok(&root, &["images", "-q"]), "");
    let pruned = ok(&root, &["prune"]);
    assert!(pruned.contains("Total reclaimed space"), "{pruned}");
    if is_root() {
        // rmi freed the blobs; the snapshot goes at the prune.
        assert!(pruned.contains("and 1 snapshots"), "{pruned}");
    }
    let out = hull(&root, &["inspect", "hello:1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such image: hello:1"));
}

#[test]
fn a_failed_unpack_leaves_the_image_registered() {
    // A layer that writes through its own symlink: stored and named, refused by the unpack.
    let t = tempfile::tempdir().unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    b.append_link(&mut h, "etc", "/tmp").unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o644);
    let name = format!("hull-evil-{}", std::process::id());
    b.append_data(&mut h, format!("etc/{name}"), &b"evil"[..])
        .unwrap();
    let tarball = t.path().join("evil.tar");
    std::fs::write(&tarball, b.into_inner().unwrap()).unwrap();
    let root = t.path().join("store");
    let out = hull(&root, &["import", tarball.to_str().unwrap(), "evil:1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("stored and registered")
            && err.contains("hull-image unpack")
            && err.contains("through the symlink"),
        "{err}"
    );
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(ok(&root, &["images", "-q", "--no-trunc"]).trim(), id);
    // A retry names the same problem; nothing was written outside the snapshot.
    let again = hull(&root, &["unpack", "evil:1"]);
    assert!(!again.status.success());
    assert!(!Path::new("/tmp").join(&name).exists());
}
