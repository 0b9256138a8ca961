//! Reading keepalived.conf files from disk for the parser: the one file-system [`Loader`]
//! (`lvsd check` and the scenario loader both use it).

use lvs_core::config::Loader;

/// Reads config files from disk; `include` patterns go through the glob crate.
#[derive(Debug, Default)]
pub struct FsLoader {
    /// The id `@ID` lines are matched against.
    pub config_id: Option<String>,
    /// `${_PWD}`; None: `/`, keepalived's as systemd starts it.
    pub working_dir: Option<String>,
    /// The seed of `${_RANDOM}`.
    pub random_seed: u64,
}

impl Loader for FsLoader {
    fn config_id(&self) -> Option<String> {
        self.config_id.clone()
    }

    fn working_dir(&self) -> String {
        self.working_dir.clone().unwrap_or_else(|| "/".to_string())
    }

    fn random_seed(&self) -> u64 {
        self.random_seed
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
