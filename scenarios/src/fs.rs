//! Reading keepalived.conf files from disk for the parser: the one file-system [`Loader`]
//! (`lvsd check` and the scenario loader both use it).

use std::io::Read;
use std::path::Path;

use lvs_core::config::Loader;

/// The most a keepalived.conf (or an included file, or a scenario) may hold: far beyond any
/// real one, and read in well under a second, so `/dev/zero` or a log file given by mistake
/// is refused instead of eating memory.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// Read `path` as text (bytes that are not UTF-8 replaced), refusing more than
/// [`MAX_FILE_BYTES`] with an error that says so.
pub fn read_bounded(path: &Path) -> std::io::Result<String> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "larger than {} MiB: not a configuration file (a device, a log, a binary?)",
                MAX_FILE_BYTES >> 20
            ),
        ));
    }
    // keepalived reads bytes; a stray non-UTF-8 byte must not make the file unreadable.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

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
        read_bounded(Path::new(path)).map_err(|e| e.to_string())
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
