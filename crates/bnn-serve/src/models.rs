//! The models being served, by name, and their reload.
//!
//! The set is an `Arc` behind a lock held only to clone or replace it: a
//! request takes the `Arc<Served>` of its model once and runs on it to the
//! end, so a reload never changes the model under a request in flight
//! (the old model is freed when its last request finishes).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use bnn_core::Model;
use serde_json::json;

use crate::{Config, StartError};

/// One model as served: its name (the file stem), its file, the model
/// and the `info` answer, made once at load.
#[derive(Debug)]
pub struct Served {
    pub name: String,
    pub path: PathBuf,
    pub model: Arc<Model>,
    pub info: Vec<u8>,
}

/// What a reload did: the models now served, and one line per file that
/// could not be loaded (the old model, if any, is kept for those).
#[derive(Debug, Default)]
pub struct ReloadReport {
    pub models: Vec<String>,
    pub errors: Vec<String>,
}

type Set = Arc<BTreeMap<String, Arc<Served>>>;

#[derive(Debug)]
pub struct Registry {
    source: PathBuf,
    set: RwLock<Set>,
}

impl Registry {
    /// Loads every model at start: any file that does not load is an
    /// error, since a server that starts without a model it was given
    /// would answer `404` for it with no one told why.
    pub fn load(config: &Config) -> Result<Registry, StartError> {
        let files = list(&config.models).map_err(StartError)?;
        let mut set = BTreeMap::new();
        for (name, path) in files {
            let served = load_one(&name, &path).map_err(StartError)?;
            set.insert(name, Arc::new(served));
        }
        Ok(Registry {
            source: config.models.clone(),
            set: RwLock::new(Arc::new(set)),
        })
    }

    /// The model served as `name`, if any.
    pub fn get(&self, name: &str) -> Option<Arc<Served>> {
        self.current().get(name).cloned()
    }

    /// The whole set as it is now.
    pub fn current(&self) -> Set {
        // A poisoned lock only means a panic elsewhere while cloning an
        // Arc; the set itself is always whole.
        self.set.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reads the files again. A file that fails keeps its old model (and
    /// the failure is reported); a file that is gone is no longer served;
    /// a new file is served from now on.
    pub fn reload(&self) -> ReloadReport {
        let mut report = ReloadReport::default();
        let old = self.current();
        let files = match list(&self.source) {
            Ok(files) => files,
            Err(e) => {
                report.errors.push(format!("{e}; keeping every model"));
                report.models = old.keys().cloned().collect();
                return report;
            }
        };
        let mut set = BTreeMap::new();
        for (name, path) in files {
            match load_one(&name, &path) {
                Ok(served) => {
                    set.insert(name, Arc::new(served));
                }
                Err(e) => {
                    if let Some(kept) = old.get(&name) {
                        report
                            .errors
                            .push(format!("{e}; keeping the model loaded before"));
                        set.insert(name, kept.clone());
                    } else {
                        report.errors.push(e);
                    }
                }
            }
        }
        report.models = set.keys().cloned().collect();
        *self.set.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
        report
    }
}

/// `(name, path)` of each model: the file itself, or every `.bnn` regular
/// file of the directory, by name.
fn list(source: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let meta = std::fs::metadata(source).map_err(|e| format!("{}: {e}", source.display()))?;
    let mut files = Vec::new();
    if meta.is_dir() {
        let entries =
            std::fs::read_dir(source).map_err(|e| format!("{}: {e}", source.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", source.display()))?;
            let path = entry.path();
            let is_bnn = path.extension().is_some_and(|e| e == "bnn");
            if is_bnn && std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
                files.push(path);
            }
        }
        if files.is_empty() {
            return Err(format!(
                "{}: no .bnn model in this directory",
                source.display()
            ));
        }
    } else {
        files.push(source.to_path_buf());
    }
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_graphic() && c != '/' && c != '%'))
                .ok_or_else(|| {
                    format!(
                        "{}: the file name cannot name a model in a URL (printable ASCII, no % or /)",
                        path.display()
                    )
                })?;
            Ok((name.to_string(), path))
        })
        .collect()
}

fn load_one(name: &str, path: &Path) -> Result<Served, String> {
    let file = bnn_core::format::load(path).map_err(|e| e.to_string())?;
    let bytes = file.file_bytes;
    let model = file.model;
    let shape = model.input_shape();
    let info = json!({
        "name": name,
        "file": path.display().to_string(),
        "bytes": bytes,
        "arch": model.arch(),
        "shape": model.shape(),
        "input": {
            "len": model.input_len(),
            "height": shape.height,
            "width": shape.width,
            "channels": shape.channels,
            "encoding": model.input_encoding().describe(),
        },
        "feature_encoding": model.feature_encoding().map(|e| e.describe()),
        "features": model.feature_encoding().map(|e| e.features()),
        "classes": model.num_classes(),
        "class_names": model.class_names(),
        "memory_bytes": model.memory_bytes(),
    });
    Ok(Served {
        name: name.to_string(),
        path: path.to_path_buf(),
        model: Arc::new(model),
        info: serde_json::to_vec(&info).unwrap_or_default(),
    })
}
