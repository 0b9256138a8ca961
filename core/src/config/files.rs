//! Config files held in memory: what a driver read once from disk (the main file's `include`s)
//! handed to the parser again later, with no file system. A [`Recording`] loader wraps the
//! driver's own loader and keeps every answer it gives; the [`FileSet`] it yields answers the
//! same reads and globs the same way.

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::lexer::Loader;

/// Files and glob answers, as a loader gave them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileSet {
    files: BTreeMap<String, Result<String, String>>,
    globs: BTreeMap<String, Result<Vec<String>, String>>,
    config_id: Option<String>,
    working_dir: String,
    random_seed: u64,
}

impl FileSet {
    /// The paths read, in order.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }
}

impl Loader for FileSet {
    fn read(&self, path: &str) -> Result<String, String> {
        self.files
            .get(path)
            .cloned()
            .unwrap_or_else(|| Err(format!("{path} was not read when the config was loaded")))
    }

    fn glob(&self, pattern: &str) -> Result<Vec<String>, String> {
        self.globs
            .get(pattern)
            .cloned()
            .unwrap_or_else(|| Ok(Vec::new()))
    }

    fn config_id(&self) -> Option<String> {
        self.config_id.clone()
    }

    fn working_dir(&self) -> String {
        self.working_dir.clone()
    }

    fn random_seed(&self) -> u64 {
        self.random_seed
    }
}

/// A loader that passes every call to `inner` and remembers the answers.
pub struct Recording<'a> {
    inner: &'a dyn Loader,
    seen: RefCell<FileSet>,
}

impl<'a> Recording<'a> {
    /// Record what `inner` answers.
    pub fn new(inner: &'a dyn Loader) -> Self {
        let seen = FileSet {
            config_id: inner.config_id(),
            working_dir: inner.working_dir(),
            random_seed: inner.random_seed(),
            ..FileSet::default()
        };
        Recording {
            inner,
            seen: RefCell::new(seen),
        }
    }

    /// Everything read so far.
    pub fn into_files(self) -> FileSet {
        self.seen.into_inner()
    }
}

impl Loader for Recording<'_> {
    fn read(&self, path: &str) -> Result<String, String> {
        let r = self.inner.read(path);
        self.seen
            .borrow_mut()
            .files
            .insert(path.to_string(), r.clone());
        r
    }

    fn glob(&self, pattern: &str) -> Result<Vec<String>, String> {
        let r = self.inner.glob(pattern);
        self.seen
            .borrow_mut()
            .globs
            .insert(pattern.to_string(), r.clone());
        r
    }

    fn config_id(&self) -> Option<String> {
        self.inner.config_id()
    }

    fn working_dir(&self) -> String {
        self.inner.working_dir()
    }

    fn random_seed(&self) -> u64 {
        self.inner.random_seed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_text;

    struct Two;

    impl Loader for Two {
        fn read(&self, path: &str) -> Result<String, String> {
            match path {
                "/k/conf.d/a.conf" => Ok("vrrp_instance A {\n interface eth0\n virtual_router_id 1\n priority 100\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n".into()),
                _ => Err("No such file or directory".into()),
            }
        }

        fn glob(&self, pattern: &str) -> Result<Vec<String>, String> {
            Ok(if pattern == "/k/conf.d/*.conf" {
                vec!["/k/conf.d/a.conf".into()]
            } else {
                Vec::new()
            })
        }
    }

    #[test]
    fn a_recorded_file_set_parses_as_the_loader_did() {
        let main = "include conf.d/*.conf\n";
        let rec = Recording::new(&Two);
        let first = parse_text("/k/keepalived.conf", main, &rec);
        let files = rec.into_files();
        assert_eq!(files.paths().collect::<Vec<_>>(), vec!["/k/conf.d/a.conf"]);
        let again = parse_text("/k/keepalived.conf", main, &files);
        assert_eq!(first.diagnostics, again.diagnostics);
        assert_eq!(first.config, again.config);
        assert_eq!(again.config.unwrap().vrrp_instances.len(), 1);
    }
}
