//! A throwaway PostgreSQL cluster for tests: `initdb` in a temp dir, `pg_ctl start` on a free
//! 127.0.0.1 port (and a unix socket in the temp dir), `pg_ctl stop` and removal on drop.
//!
//! Uses Debian's packages (`/usr/lib/postgresql/<N>/bin`, the newest found; `HASS_AUTH_PG_BIN`
//! overrides). PostgreSQL refuses to run as root, so when the tests run as root (CI) the cluster
//! belongs to the `postgres` user the package creates and every server command runs through
//! `runuser -u postgres`. A missing installation is a failure with install instructions, never a skip.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A running throwaway cluster; stopped and deleted on drop. Trust authentication, user `postgres`.
#[derive(Debug)]
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl PgCluster {
    /// Creates and starts a cluster. Panics with instructions when PostgreSQL is not installed.
    pub fn start() -> Self {
        let bin = pg_bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("hass-auth-pg-")
            .tempdir()
            .expect("can create a temp dir");
        let as_postgres = is_root();
        if as_postgres {
            // The cluster's files belong to `postgres`; the temp dir must be reachable for it.
            set_mode(dir.path(), 0o755);
        }
        for sub in ["data", "sock"] {
            std::fs::create_dir(dir.path().join(sub)).expect("can create a cluster dir");
            if as_postgres {
                chown_postgres(&dir.path().join(sub));
            }
        }
        set_mode(&dir.path().join("data"), 0o700);
        let port = free_port();
        let this = Self {
            dir,
            bin,
            port,
            as_postgres,
        };
        let data = this.dir.path().join("data");
        this.run(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c max_connections=100",
            path_str(&this.dir.path().join("sock"))
        );
        let log = this.dir.path().join("sock/server.log");
        this.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data),
                "-o",
                &options,
                "-l",
                path_str(&log),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        this
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for database `db` (`postgres` always exists).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates database `name` and returns its URL.
    pub fn create_database(&self, name: &str) -> String {
        self.run(
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                name,
            ],
        );
        self.url(name)
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let output = self
            .command(program)
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        if !output.status.success() {
            let log = std::fs::read_to_string(self.dir.path().join("sock/server.log"))
                .unwrap_or_default();
            panic!(
                "{program} {args:?} failed ({}):\n{}{}\n{log}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = self
            .command("pg_ctl")
            .args(["-D", path_str(&data), "-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// The newest `/usr/lib/postgresql/<N>/bin` holding `initdb`, or `HASS_AUTH_PG_BIN`.
fn pg_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HASS_AUTH_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/<N>/bin/initdb): \
             `apt-get install -y postgresql` (or set HASS_AUTH_PG_BIN)"
        )
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("can bind 127.0.0.1:0")
        .port()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // The owner of a file we just created is our effective user.
    let probe = tempfile::NamedTempFile::new().expect("can create a temp file");
    probe
        .as_file()
        .metadata()
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
}

fn chown_postgres(path: &Path) {
    let status = Command::new("chown")
        .args(["postgres:postgres"])
        .arg(path)
        .status()
        .unwrap_or_else(|e| panic!("cannot run chown: {e}"));
    assert!(
        status.success(),
        "chown postgres {} failed: is the `postgres` user there (apt-get install -y postgresql)?",
        path.display()
    );
}
