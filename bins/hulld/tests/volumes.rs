//! Volumes through hulld with the docker CLI: named volumes that outlive containers and are
//! filled from the image, binds (read-only), tmpfs sizes, `docker volume` create/ls/inspect/
//! rm/prune, `rm -v`, and the policy's refusal of `/`. Afterwards nothing is mounted.

mod common;

use common::{busybox_tar, preflight, Hulld};

const CLI: &str = "/usr/bin/docker";

fn run(d: &Hulld, args: &[&str]) -> (i32, String, String) {
    let out = d.docker(CLI, args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn loaded() -> Option<Hulld> {
    if !preflight(&[]) {
        return None;
    }
    let d = Hulld::start();
    d.ok(CLI, &["load", "-i", busybox_tar().to_str().unwrap()]);
    Some(d)
}

fn volume_names(d: &Hulld, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["volume", "ls", "-q"];
    args.extend_from_slice(extra);
    let mut v: Vec<String> = d
        .ok(CLI, &args)
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect();
    v.sort();
    v
}

/// What hulld mounted under its own directory once every container is gone: nothing.
fn assert_no_container_mounts(d: &Hulld) {
    let exec = d.dir.path().join("exec").display().to_string();
    let left: Vec<String> = d
        .mounts()
        .into_iter()
        .filter(|m| m.starts_with(&exec))
        .collect();
    assert!(left.is_empty(), "mounts left: {left:?}");
}

#[test]
fn named_volumes_persist_and_are_filled_from_the_image() {
    let Some(d) = loaded() else { return };
    let base = ["run", "--rm", "--network", "none"];
    let mut args = base.to_vec();
    args.extend([
        "-v",
        "data:/d",
        "busybox",
        "sh",
        "-c",
        "echo kept > /d/f && id -u",
    ]);
    assert_eq!(d.ok(CLI, &args).trim(), "0");
    let mut args = base.to_vec();
    args.extend([
        "-v",
        "data:/d:ro",
        "busybox",
        "sh",
        "-c",
        "cat /d/f; stat -c %u:%g /d/f; touch /d/g 2>&1 || echo refused",
    ]);
    let out = d.ok(CLI, &args);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "kept", "{out}");
    assert_eq!(
        lines[1], "0:0",
        "a second container's root owns what the first wrote: {out}"
    );
    assert!(
        out.contains("Read-only file system") && out.ends_with("refused\n"),
        "{out}"
    );
    // On the host the content lies unshifted under the volume's mountpoint.
    let inspect = d.ok(CLI, &["volume", "inspect", "data"]);
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    let mp = v[0]["Mountpoint"].as_str().unwrap().to_string();
    assert_eq!(v[0]["Driver"], "local");
    assert_eq!(
        std::fs::read_to_string(format!("{mp}/f")).unwrap(),
        "kept\n"
    );

    // A new named volume at /etc starts with the image's /etc; nocopy leaves it empty.
    let mut args = base.to_vec();
    args.extend(["-v", "etc:/etc", "busybox", "cat", "/etc/passwd"]);
    assert!(d.ok(CLI, &args).starts_with("root:"));
    let mut args = base.to_vec();
    args.extend([
        "--mount",
        "type=volume,src=bare,dst=/etc,volume-nocopy",
        "busybox",
        "ls",
        "-A",
        "/etc",
    ]);
    // only the files every container gets bound (as in Docker), nothing copied up
    assert_eq!(
        d.ok(CLI, &args).split_whitespace().collect::<Vec<_>>(),
        ["hostname", "hosts", "resolv.conf"]
    );
    assert_eq!(volume_names(&d, &[]), ["bare", "data", "etc"]);
    assert_no_container_mounts(&d);
}

#[test]
fn binds_are_read_only_when_asked_and_tmpfs_has_its_size() {
    let Some(d) = loaded() else { return };
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("hello"), "from the host\n").unwrap();
    let bind = format!("{}:/h:ro", host.path().display());
    let out = d.ok(
        CLI,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &bind,
            "--tmpfs",
            "/t1:size=1m",
            "--mount",
            "type=tmpfs,dst=/t2,tmpfs-size=2097152",
            "busybox",
            "sh",
            "-c",
            "cat /h/hello; touch /h/x 2>&1; grep -E ' /t[12] ' /proc/mounts",
        ],
    );
    assert!(out.starts_with("from the host\n"), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(!host.path().join("x").exists());
    let t1 = out
        .lines()
        .find(|l| l.contains(" /t1 "))
        .unwrap_or_else(|| panic!("{out}"));
    let t2 = out
        .lines()
        .find(|l| l.contains(" /t2 "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        t1.starts_with("tmpfs ") && t1.contains("size=1024k"),
        "{t1}"
    );
    assert!(
        t2.starts_with("tmpfs ") && t2.contains("size=2048k"),
        "{t2}"
    );

    // Inspect's Mounts names them as Docker does.
    let id = d.ok(
        CLI,
        &[
            "create",
            "--network",
            "none",
            "-v",
            &bind,
            "-v",
            "named:/n",
            "busybox",
        ],
    );
    let id = id.trim();
    let v: serde_json::Value = serde_json::from_str(&d.ok(CLI, &["inspect", id])).unwrap();
    let mounts = v[0]["Mounts"].as_array().unwrap().clone();
    let b = mounts
        .iter()
        .find(|m| m["Destination"] == "/h")
        .expect("the bind");
    assert_eq!(b["Type"], "bind");
    assert_eq!(b["Source"], host.path().display().to_string());
    assert_eq!(b["RW"], false);
    let n = mounts
        .iter()
        .find(|m| m["Destination"] == "/n")
        .expect("the volume");
    assert_eq!(n["Type"], "volume");
    assert_eq!(n["Name"], "named");
    assert_eq!(n["Driver"], "local");
    assert_eq!(n["RW"], true);
    d.ok(CLI, &["rm", id]);

    // A missing `-v` source is made (as Docker); a missing `--mount` source is an error.
    let made = host.path().join("made/here");
    let bind = format!("{}:/m", made.display());
    d.ok(
        CLI,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &bind,
            "busybox",
            "true",
        ],
    );
    assert!(made.is_dir());
    let mount = format!("type=bind,src={}/nope,dst=/m", host.path().display());
    let err = d.fails(
        CLI,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--mount",
            &mount,
            "busybox",
            "true",
        ],
    );
    assert!(err.contains("bind source path does not exist"), "{err}");

    // `/` and the host's system paths are refused by default, naming the policy.
    for src in ["/", "/proc", "/var/run/docker.sock"] {
        let bind = format!("{src}:/host");
        let (code, _, err) = run(
            &d,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "-v",
                &bind,
                "busybox",
                "true",
            ],
        );
        assert_ne!(code, 0);
        assert!(err.contains("refused by policy"), "{src}: {err}");
    }
    assert_no_container_mounts(&d);
}

#[test]
fn volume_commands_rm_in_use_prune_and_rm_v() {
    let Some(d) = loaded() else { return };
    d.ok(CLI, &["volume", "create", "--label", "team=a", "keep"]);
    d.ok(CLI, &["volume", "create", "--label", "team=b", "spare"]);
    let generated = d.ok(CLI, &["volume", "create"]).trim().to_string();
    assert_eq!(generated.len(), 64, "{generated}");
    assert_eq!(volume_names(&d, &["--filter", "label=team=a"]), ["keep"]);
    assert_eq!(volume_names(&d, &["--filter", "name=spa"]), ["spare"]);
    let v: serde_json::Value =
        serde_json::from_str(&d.ok(CLI, &["volume", "inspect", "keep"])).unwrap();
    assert_eq!(v[0]["Labels"]["team"], "a");
    assert_eq!(v[0]["Scope"], "local");
    assert!(v[0]["Mountpoint"]
        .as_str()
        .unwrap()
        .ends_with("/volumes/keep/_data"));

    // tmpfs volume with a size.
    d.ok(
        CLI,
        &[
            "volume",
            "create",
            "-o",
            "type=tmpfs",
            "-o",
            "device=tmpfs",
            "-o",
            "o=size=3m",
            "scratch",
        ],
    );
    let out = d.ok(
        CLI,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            "scratch:/s",
            "busybox",
            "sh",
            "-c",
            "touch /s/x && grep ' /s ' /proc/mounts",
        ],
    );
    assert!(
        out.starts_with("tmpfs ") && out.contains("size=3072k"),
        "{out}"
    );

    // A volume binding a host directory: its files as they are; removing the volume
    // leaves the directory and its content; a host system path is refused by the policy.
    let hostdir = tempfile::tempdir().unwrap();
    std::fs::write(hostdir.path().join("greeting"), "hello\n").unwrap();
    let dev = format!("device={}", hostdir.path().display());
    d.ok(
        CLI,
        &[
            "volume",
            "create",
            "-o",
            "type=none",
            "-o",
            "o=bind",
            "-o",
            &dev,
            "hostvol",
        ],
    );
    let out = d.ok(
        CLI,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            "hostvol:/h",
            "busybox",
            "cat",
            "/h/greeting",
        ],
    );
    assert_eq!(out, "hello\n");
    d.ok(CLI, &["volume", "rm", "hostvol"]);
    assert_eq!(
        std::fs::read_to_string(hostdir.path().join("greeting")).unwrap(),
        "hello\n"
    );
    let err = d.fails(
        CLI,
        &[
            "volume",
            "create",
            "-o",
            "type=none",
            "-o",
            "o=bind",
            "-o",
            "device=/etc",
            "etcvol",
        ],
    );
    assert!(err.contains("refused by policy"), "{err}");

    // In use: 409 from the API, an error from the CLI, the volume stays.
    let id = d.ok(
        CLI,
        &[
            "create",
            "--network",
            "none",
            "-v",
            "keep:/k",
            "-v",
            "/anon",
            "busybox",
        ],
    );
    let id = id.trim();
    let (code, body) = d.curl(&["-X", "DELETE"], "/v1.41/volumes/keep");
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("in use"), "{body}");
    assert!(d.fails(CLI, &["volume", "rm", "keep"]).contains("in use"));
    let (code, body) = d.curl(&["-X", "DELETE"], "/volumes/nosuch");
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("no such volume"), "{body}");
    let (code, _) = d.curl(&["-X", "DELETE"], "/volumes/nosuch?force=1");
    assert_eq!(code, 204);

    // The anonymous volume of the container.
    let v: serde_json::Value = serde_json::from_str(&d.ok(CLI, &["inspect", id])).unwrap();
    let anon = v[0]["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == "/anon")
        .expect("the anonymous volume")["Name"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(volume_names(&d, &[]).contains(&anon));
    assert!(volume_names(&d, &["--filter", "dangling=true"]).contains(&"spare".to_string()));
    assert!(!volume_names(&d, &["--filter", "dangling=true"]).contains(&"keep".to_string()));

    // Prune (API 1.41: every unused volume) keeps those in use.
    let (code, body) = d.curl(
        &["-X", "POST"],
        "/v1.41/volumes/prune?filters=%7B%22label%22%3A%5B%22team%3Db%22%5D%7D",
    );
    assert_eq!(code, 200, "{body}");
    let p: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(p["VolumesDeleted"], serde_json::json!(["spare"]));
    assert!(p["SpaceReclaimed"].is_u64());
    d.ok(CLI, &["volume", "prune", "-f"]);
    let left = volume_names(&d, &[]);
    assert!(
        left.contains(&"keep".to_string()) && left.contains(&anon),
        "{left:?}"
    );
    assert!(
        !left.contains(&generated) && !left.contains(&"scratch".to_string()),
        "{left:?}"
    );

    // VolumesFrom: the other container's volumes, read-only when asked.
    let out = d.ok(
        CLI,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--volumes-from",
            &format!("{id}:ro"),
            "busybox",
            "sh",
            "-c",
            "grep -E ' /(k|anon) ' /proc/mounts | awk '{split($4, o, \",\"); print $2, o[1]}'",
        ],
    );
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(lines, ["/anon ro", "/k ro"], "{out}");

    // Creations and removals through the API were published.
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let until = until.to_string();
    let ev = d.ok(
        CLI,
        &[
            "events",
            "--since",
            "0",
            "--until",
            &until,
            "--filter",
            "type=volume",
            "--format",
            "{{.Action}} {{.Actor.ID}}",
        ],
    );
    for line in [
        "create keep",
        "create spare",
        "create scratch",
        "destroy spare",
    ] {
        assert!(ev.lines().any(|l| l == line), "{line:?} not in {ev}");
    }

    // rm -v removes the anonymous volume, not the named one.
    d.ok(CLI, &["rm", "-v", id]);
    let left = volume_names(&d, &[]);
    assert_eq!(left, ["keep"]);
    d.ok(CLI, &["volume", "rm", "keep"]);
    assert!(volume_names(&d, &[]).is_empty());
    assert!(!d.dir.path().join("data/volumes/keep").exists());
    assert_no_container_mounts(&d);
    assert!(d.mounts().is_empty(), "{:?}", d.mounts());
}

/// `busybox` with `VOLUME /etc` in its config, loaded as `withvol`.
fn load_image_with_volume(d: &Hulld) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("withvol.tar");
    let script = r#"
import hashlib, io, json, sys, tarfile
src, dst = sys.argv[1], sys.argv[2]
t = tarfile.open(src)
files = {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}
man = json.loads(files["manifest.json"])
old = man[0]["Config"]
cfg = json.loads(files[old])
cfg["config"]["Volumes"] = {"/etc": {}}
body = json.dumps(cfg).encode()
new = hashlib.sha256(body).hexdigest() + ".json"
man[0]["Config"] = new
man[0]["RepoTags"] = ["withvol:latest"]
o = tarfile.open(dst, "w")
def add(name, data):
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    o.addfile(ti, io.BytesIO(data))
for m in t.getmembers():
    if m.name in ("manifest.json", "repositories", old):
        continue
    o.addfile(m, io.BytesIO(files[m.name]) if m.isfile() else None)
add(new, body)
add("manifest.json", json.dumps(man).encode())
o.close()
"#;
    let st = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(busybox_tar())
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    d.ok(CLI, &["load", "-i", out.to_str().unwrap()]);
}

#[test]
fn an_images_volumes_are_anonymous_volumes_filled_from_the_image() {
    let Some(d) = loaded() else { return };
    load_image_with_volume(&d);
    let id = d.ok(
        CLI,
        &[
            "create",
            "--network",
            "none",
            "withvol",
            "cat",
            "/etc/passwd",
        ],
    );
    let id = id.trim();
    let v: serde_json::Value = serde_json::from_str(&d.ok(CLI, &["inspect", id])).unwrap();
    let m = &v[0]["Mounts"][0];
    assert_eq!(
        (m["Type"].as_str(), m["Destination"].as_str()),
        (Some("volume"), Some("/etc")),
        "{v}"
    );
    let name = m["Name"].as_str().unwrap().to_string();
    assert_eq!(name.len(), 64);
    let out = d.ok(CLI, &["start", "-a", id]);
    assert!(out.starts_with("root:"), "{out}");
    // `rm` without -v keeps it; prune (anonymous, unused) takes it.
    d.ok(CLI, &["rm", id]);
    assert_eq!(volume_names(&d, &[]), std::slice::from_ref(&name));
    d.ok(CLI, &["volume", "prune", "-f"]);
    assert!(volume_names(&d, &[]).is_empty());
    // `run --rm` takes its anonymous volume with it; `-v` over the target replaces it.
    assert!(d
        .ok(
            CLI,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "withvol",
                "cat",
                "/etc/group"
            ]
        )
        .starts_with("root:"));
    // (the CLI returns when the container is gone; its volumes follow right after)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !volume_names(&d, &[]).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            volume_names(&d, &[])
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    d.ok(
        CLI,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            "named:/etc",
            "withvol",
            "true",
        ],
    );
    assert_eq!(volume_names(&d, &[]), ["named"]);
    assert_no_container_mounts(&d);
}
