//! `POST /commit`: a new image from a container: the image's layers, plus one layer made
//! from the container's upper dir (whiteouts as `.wh.` files), and the image's config with
//! the container's Cmd/Env/... and Docker `--change` instructions applied. The image's ID is
//! its config's digest; its history gains one entry.

use serde_json::{json, Map, Value};

use hull_image::media;
use hull_image::Reference;

use super::fs::{write_tar, IdShift, Markers};
use super::{ContainerService, ContainersError};

/// What `POST /commit` was asked for.
#[derive(Debug, Default, Clone)]
pub struct CommitOptions {
    pub container: String,
    pub repo: String,
    pub tag: String,
    pub comment: String,
    pub author: String,
    pub changes: Vec<String>,
    pub pause: bool,
    /// The request body: a container Config whose fields replace the image's.
    pub config: Option<Value>,
}

fn failed(id: &str, message: impl std::fmt::Display) -> ContainersError {
    ContainersError::Failed {
        step: "committing",
        id: id.to_string(),
        message: message.to_string(),
    }
}

/// Container Config fields an image config carries.
const IMAGE_FIELDS: [&str; 12] = [
    "User",
    "ExposedPorts",
    "Env",
    "Cmd",
    "Healthcheck",
    "Volumes",
    "WorkingDir",
    "Entrypoint",
    "OnBuild",
    "Labels",
    "StopSignal",
    "Shell",
];

impl ContainerService {
    /// Commits a container; the new image's ID.
    pub fn commit(&self, o: &CommitOptions) -> Result<String, ContainersError> {
        let rec = self.get(&o.container)?;
        let reference = match (o.repo.as_str(), o.tag.as_str()) {
            ("", _) => None,
            (r, "") => Some(r.to_string()),
            (r, t) => Some(format!("{r}:{t}")),
        }
        .map(|s| {
            Reference::parse(&s)
                .map_err(|e| ContainersError::Invalid(format!("repo/tag {s:?}: {e}")))
        })
        .transpose()?;
        let image =
            self.images
                .resolve(&rec.image_id)
                .map_err(|source| ContainersError::Image {
                    image: rec.image_id.clone(),
                    source,
                })?;
        let read_json = |d: &hull_image::Digest| -> Result<Value, ContainersError> {
            let b = self
                .images
                .content
                .read(d)
                .map_err(|e| failed(&rec.id, e))?;
            serde_json::from_slice(&b).map_err(|e| failed(&rec.id, e))
        };
        let base_manifest = read_json(&image.manifest)?;
        let mut cfg = read_json(&image.id)?;

        // The new blobs must not be collected before the image is registered.
        let _gc = self.images.gc_lock(false).map_err(|e| failed(&rec.id, e))?;
        // Paused while the layer is written (Docker's default), unless asked not to.
        let pause = o.pause && rec.state.status == super::Status::Running;
        if pause {
            self.pause(&rec.id)?;
        }
        let layer = (|| {
            let mut w = self
                .images
                .content
                .writer(None, None)
                .map_err(|e| failed(&rec.id, e))?;
            let upper = self.upper_dir(&rec.id);
            write_tar(
                &upper,
                IdShift {
                    start: rec.uid_start,
                    size: hull_engine::userns::RANGE_SIZE,
                },
                Markers::Upper,
                &mut w,
            )
            .map_err(|e| {
                failed(
                    &rec.id,
                    format!("writing the layer from {}: {e}", upper.display()),
                )
            })?;
            let size = w.written();
            let digest = w.commit().map_err(|e| failed(&rec.id, e))?;
            Ok::<_, ContainersError>((digest, size))
        })();
        if pause {
            if let Err(e) = self.unpause(&rec.id) {
                tracing::warn!("container {}: unpausing after commit: {e}", rec.id);
            }
        }
        let (layer, layer_size) = layer?;

        // The config: the container's settings over the image's, then the changes.
        let mut config: Map<String, Value> = cfg["config"].as_object().cloned().unwrap_or_default();
        // The container's settings, then the request body's (Docker merges the two).
        for (k, from) in [Some(&rec.config), o.config.as_ref()]
            .into_iter()
            .flatten()
            .flat_map(|from| IMAGE_FIELDS.map(|k| (k, from)))
        {
            let Some(v) = from.get(k).filter(|v| !v.is_null()) else {
                continue;
            };
            match (k, config.get_mut(k)) {
                // The request's Env and Labels were added to the image's.
                ("Env", Some(Value::Array(have))) => {
                    for e in v.as_array().into_iter().flatten() {
                        let key = e.as_str().and_then(|s| s.split('=').next()).unwrap_or("");
                        have.retain(|h| h.as_str().and_then(|s| s.split('=').next()) != Some(key));
                        have.push(e.clone());
                    }
                }
                ("Labels", Some(Value::Object(have))) => {
                    for (lk, lv) in v.as_object().into_iter().flatten() {
                        have.insert(lk.clone(), lv.clone());
                    }
                }
                _ => {
                    config.insert(k.to_string(), v.clone());
                }
            }
        }
        hull_image::archive::apply_changes(&mut config, &o.changes)
            .map_err(|e| ContainersError::Invalid(format!("changes: {e}")))?;
        let now = hull_runtime::state::now_rfc3339();
        cfg["config"] = Value::Object(config);
        cfg["created"] = json!(now);
        cfg["container"] = json!(rec.id);
        if !o.author.is_empty() {
            cfg["author"] = json!(o.author);
        }
        let diff_ids = cfg["rootfs"]["diff_ids"].as_array_mut();
        match diff_ids {
            Some(d) => d.push(json!(layer.to_string())),
            None => {
                cfg["rootfs"] = json!({ "type": "layers", "diff_ids": [layer.to_string()] });
            }
        }
        let created_by = std::iter::once(rec.path.as_str())
            .chain(rec.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        let mut entry = json!({ "created": now, "created_by": created_by });
        if !o.comment.is_empty() {
            entry["comment"] = json!(o.comment);
        }
        if !o.author.is_empty() {
            entry["author"] = json!(o.author);
        }
        match cfg["history"].as_array_mut() {
            Some(h) => h.push(entry),
            None => cfg["history"] = json!([entry]),
        }
        let cbytes = serde_json::to_vec(&cfg).map_err(|e| failed(&rec.id, e))?;
        let config_digest = self
            .images
            .content
            .put(&cbytes, None)
            .map_err(|e| failed(&rec.id, e))?;

        // The manifest: the image's, with the new config and one more (uncompressed) layer.
        let docker = base_manifest["mediaType"] == media::DOCKER_MANIFEST;
        let (mt, ct, lt) = if docker {
            (
                media::DOCKER_MANIFEST,
                media::DOCKER_CONFIG,
                media::DOCKER_LAYER,
            )
        } else {
            (media::OCI_MANIFEST, media::OCI_CONFIG, media::OCI_LAYER)
        };
        let mut layers = base_manifest["layers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        layers.push(json!({ "mediaType": lt, "digest": layer.to_string(), "size": layer_size }));
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": mt,
            "config": { "mediaType": ct, "digest": config_digest.to_string(), "size": cbytes.len() },
            "layers": layers,
        });
        let mbytes = serde_json::to_vec(&manifest).map_err(|e| failed(&rec.id, e))?;
        let md = self
            .images
            .content
            .put(&mbytes, None)
            .map_err(|e| failed(&rec.id, e))?;
        let refs: Vec<Reference> = reference.into_iter().collect();
        let img =
            self.images
                .register_named(&md, &refs)
                .map_err(|source| ContainersError::Image {
                    image: o.repo.clone(),
                    source,
                })?;
        let mut extra = vec![("comment", o.comment.clone())];
        if let Some(r) = refs.first() {
            extra.push(("imageName", r.familiar()));
        }
        self.emit("commit", &rec, &extra);
        Ok(img.id.to_string())
    }
}
