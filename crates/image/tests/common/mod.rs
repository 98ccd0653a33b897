//! Test helpers: a private Debian `docker-registry` on 127.0.0.1 (free port, temporary storage,
//! plain HTTP, optional htpasswd), stopped by its pid on drop; the busybox image of
//! `scripts/mk-busybox-image.sh` ingested into a content store.

#![allow(dead_code)]

pub mod bearer;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hull_image::registry::RegistryOptions;
use hull_image::{ContentStore, Digest};

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Whether the test can run: `docker-registry`, `htpasswd` and root (for the busybox image).
/// A missing one is a skip, or a failure with HULL_REQUIRE_PEERS=1 (CI).
pub fn preflight() -> bool {
    let mut missing = Vec::new();
    for bin in [
        "/usr/bin/docker-registry",
        "/usr/bin/htpasswd",
        "/bin/busybox",
    ] {
        if !Path::new(bin).exists() {
            missing.push(bin.to_string());
        }
    }
    if !is_root() {
        missing.push("root (scripts/mk-busybox-image.sh)".into());
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "registry tests need {} (scripts/install-deps)",
        missing.join(", ")
    );
    if std::env::var("HULL_REQUIRE_PEERS").as_deref() == Ok("1") {
        panic!("{msg}; HULL_REQUIRE_PEERS=1 makes this a failure");
    }
    eprintln!("SKIP {msg}");
    false
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// A running registry.
pub struct Registry {
    child: Child,
    pub dir: tempfile::TempDir,
    pub host: String,
}

impl Registry {
    /// Starts one; with `users`, behind htpasswd (bcrypt) Basic auth.
    pub fn start(users: &[(&str, &str)]) -> Registry {
        Self::start_with(users, None)
    }

    /// Starts one serving HTTPS with `tls` (certificate, key) when given.
    pub fn start_with(users: &[(&str, &str)], tls: Option<(&Path, &Path)>) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let storage = dir.path().join("storage");
        std::fs::create_dir(&storage).unwrap();
        let mut auth = String::new();
        if !users.is_empty() {
            let htpasswd = dir.path().join("htpasswd");
            let mut lines = String::new();
            for (u, p) in users {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", u, p])
                    .output()
                    .unwrap();
                assert!(out.status.success(), "htpasswd failed");
                lines.push_str(String::from_utf8(out.stdout).unwrap().trim());
                lines.push('\n');
            }
            std::fs::write(&htpasswd, lines).unwrap();
            auth = format!(
                "auth:\n  htpasswd:\n    realm: hull-test\n    path: {}\n",
                htpasswd.display()
            );
        }
        let tls = match tls {
            Some((cert, key)) => format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ),
            None => String::new(),
        };
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{tls}{auth}",
                storage.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting docker-registry");
        let mut r = Registry {
            child,
            dir,
            host: format!("127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&r.host).is_err() {
            if let Ok(Some(status)) = r.child.try_wait() {
                panic!("docker-registry exited ({status}): {}", r.log());
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen: {}",
                r.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// The file holding a blob in the registry's storage.
    pub fn blob_data(&self, d: &Digest) -> PathBuf {
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&d.hex()[..2])
            .join(d.hex())
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Options for the test registry: a config dir (maybe without config.json), small chunks.
pub fn options(config_dir: &Path) -> RegistryOptions {
    RegistryOptions {
        docker_config: Some(config_dir.to_path_buf()),
        ..RegistryOptions::default()
    }
}

/// Writes `dir/config.json` with credentials for `host`.
pub fn write_docker_config(dir: &Path, host: &str, user: &str, password: &str) {
    use base64::Engine as _;
    use std::io::Write;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let mut f = std::fs::File::create(dir.join("config.json")).unwrap();
    write!(f, r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#).unwrap();
}

/// The busybox image archive, made once per test process.
fn busybox_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let tmp = dir.join(format!("registry-test-busybox-{}.tar", std::process::id()));
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mk-busybox-image.sh");
        let st = Command::new("bash")
            .arg(script)
            .arg(&tmp)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "scripts/mk-busybox-image.sh failed");
        // One file in the target dir, replaced by each run.
        let out = dir.join("registry-test-busybox.tar");
        std::fs::rename(&tmp, &out).unwrap();
        out
    })
}

/// An image in a store: its manifest digest, config JSON and layer descriptors.
pub struct Image {
    pub manifest: Digest,
    pub manifest_bytes: Vec<u8>,
    pub config: Vec<u8>,
    pub layer: Digest,
    pub layer_size: u64,
}

/// Ingests busybox (docker-save tar) into `store` as a Docker schema 2 image.
pub fn ingest_busybox(store: &ContentStore) -> Image {
    let mut ar = tar::Archive::new(std::fs::File::open(busybox_tar()).unwrap());
    let (mut config, mut layer) = (None, None);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().to_string();
        let mut bytes = Vec::new();
        if name.ends_with("/layer.tar") {
            e.read_to_end(&mut bytes).unwrap();
            layer = Some(bytes);
        } else if name.ends_with(".json") && !name.contains('/') && name != "manifest.json" {
            e.read_to_end(&mut bytes).unwrap();
            config = Some(bytes);
        }
    }
    let (config, layer) = (config.unwrap(), layer.unwrap());
    let layer_digest = store.put(&layer, None).unwrap();
    image_with_config(store, config, layer_digest, layer.len() as u64)
}

/// A schema 2 image over an existing layer blob with `config`.
pub fn image_with_config(
    store: &ContentStore,
    config: Vec<u8>,
    layer: Digest,
    layer_size: u64,
) -> Image {
    let config_digest = store.put(&config, None).unwrap();
    let manifest_bytes = format!(
        r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":{},"digest":"{config_digest}"}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar","size":{layer_size},"digest":"{layer}"}}]}}"#,
        config.len()
    )
    .into_bytes();
    let manifest = store.put(&manifest_bytes, None).unwrap();
    Image {
        manifest,
        manifest_bytes,
        config,
        layer,
        layer_size,
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it, made with openssl in `dir`:
/// returns (ca.pem, server.pem, server.key).
pub fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("running openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=hull test CA",
        ],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    ]
    .concat());
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}
