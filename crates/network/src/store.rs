//! Network records, one small JSON file per network under the state dir, replaced
//! atomically (temp file, fsync, rename, fsync of the dir). Writers hold an flock on
//! `<dir>/.lock` for a whole read-modify-write.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::endpoint::Endpoint;
use crate::ipam::Pool;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the network state dir {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot lock {path}: {source}")]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a valid network record: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot remove {path}: {source}")]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid network name {name:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit, at most 64")]
    InvalidName { name: String },
}

/// One network, as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub id: String,
    pub name: String,
    /// `bridge`, the only driver so far.
    pub driver: String,
    /// The bridge device in the namespace the manager works on.
    pub bridge: String,
    /// The MTU of what leaves the host (`com.docker.network.driver.mtu`, 1500 by
    /// default): the containers' default route carries it.
    pub mtu: u32,
    /// The MTU of the links that stay on this host: the bridge and the veth pairs
    /// (`com.hull.network.local_mtu`, 65535 by default). Traffic between containers,
    /// and between the host and its containers, published ports on loopback
    /// included, goes in segments of up to this size; set it to `mtu` for Docker's
    /// layout (one MTU everywhere).
    #[serde(default = "default_local_mtu")]
    pub local_mtu: u32,
    pub ipam: Pool,
    /// `--internal`: no masquerade, no default route, nothing in or out.
    #[serde(default)]
    pub internal: bool,
    /// `com.docker.network.bridge.enable_icc` (false: containers of the network
    /// cannot reach each other, only the gateway).
    #[serde(default = "yes")]
    pub enable_icc: bool,
    /// `com.docker.network.bridge.enable_ip_masquerade`.
    #[serde(default = "yes")]
    pub enable_ip_masquerade: bool,
    /// When it was made (RFC 3339), its labels, `--attachable` and driver options as
    /// asked for (shown by inspect).
    #[serde(default)]
    pub created: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Container ID -> its endpoint on this network.
    #[serde(default)]
    pub endpoints: BTreeMap<String, Endpoint>,
}

fn yes() -> bool {
    true
}

/// Records written before `local_mtu` existed: their bridges take the MTU of their
/// ports (the kernel adjusts a bridge whose MTU nobody set), so new veths at the
/// local MTU lift them once the old ones are gone.
fn default_local_mtu() -> u32 {
    crate::manager::DEFAULT_LOCAL_MTU
}

/// The directory of network records.
pub struct Store {
    dir: PathBuf,
}

/// Held while a read-modify-write is in progress.
pub struct Lock(#[allow(dead_code)] Flock<File>);

pub fn validate_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidName {
            name: name.to_owned(),
        })
    }
}

impl Store {
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
        Ok(Store {
            dir: dir.to_owned(),
        })
    }

    pub fn lock(&self) -> Result<Lock, StoreError> {
        let path = self.dir.join(".lock");
        let err = |source| StoreError::Lock {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(err)?;
        Flock::lock(file, FlockArg::LockExclusive)
            .map(Lock)
            .map_err(|(_, e)| err(e.into()))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    pub fn load(&self, name: &str) -> Result<Option<Network>, StoreError> {
        validate_name(name)?;
        let path = self.path(name);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| StoreError::Parse { path, source }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Read { path, source }),
        }
    }

    pub fn list(&self) -> Result<Vec<Network>, StoreError> {
        let read_err = |source| StoreError::Read {
            path: self.dir.clone(),
            source,
        };
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(read_err)? {
            let name = entry.map_err(read_err)?.file_name();
            // temp files, the lock and anything else that is not a record
            let Some(name) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .filter(|n| validate_name(n).is_ok())
            else {
                continue;
            };
            if let Some(n) = self.load(name)? {
                out.push(n);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub fn save(&self, network: &Network) -> Result<(), StoreError> {
        validate_name(&network.name)?;
        let path = self.path(&network.name);
        let tmp = self.dir.join(format!(".{}.json.tmp", network.name));
        let err = |source| StoreError::Write {
            path: path.clone(),
            source,
        };
        let bytes = serde_json::to_vec_pretty(network).map_err(|e| err(e.into()))?;
        let mut f = File::create(&tmp).map_err(err)?;
        f.write_all(&bytes).map_err(err)?;
        f.sync_all().map_err(err)?;
        fs::rename(&tmp, &path).map_err(err)?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(err)
    }

    pub fn remove(&self, name: &str) -> Result<(), StoreError> {
        let path = self.path(name);
        fs::remove_file(&path).map_err(|source| StoreError::Remove { path, source })
    }
}
