//! Reading keepalived.conf files from disk for the parser: the one file-system [`Loader`]
//! (`lvsd check` and the scenario loader both use it).

use lvs_core::config::Loader;

/// Reads config files from disk; `include` patterns go through the glob crate.
#[derive(Debug, Default)]
pub struct FsLoader {
    /// The id `@ID` lines are matched against.
    pub config_id: Option<String>,
}

impl Loader for FsLoader {
    fn config_id(&self) -> Option<String> {
        self.config_id.clone()
    }

    fn read(&self, path: &str) -> Result<String, String> {
        let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
        // keepalived reads bytes; a stray non-UTF-8 byte must not make the file unreadable.
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn glob(&self, pattern: &str) -> Result<Vec<String>, String> {
        let paths = glob::glob(pattern).map_err(|e| e.to_string())?;
        let mut out: Vec<String> = paths
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        out.sort();
        Ok(out)
    }
}
