//! Starts `moto_server` on a free loopback port and stops it with us.
//!
//! The child gets a parent-death signal from a thread that lives as long as the process, so
//! it also dies when a test binary exits without running destructors.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    #[error("moto_server was not found at {0}; run infra/bootstrap.sh (make dev and make test do)")]
    NotInstalled(String),
    #[error("moto_server could not be started: {0}")]
    Spawn(String),
    #[error("moto_server did not answer on {0} within 30 s")]
    NotReady(String),
}

/// The project's pinned moto, unless `MOTO_SERVER` names another.
pub fn default_binary() -> PathBuf {
    std::env::var_os("MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../moto_server"))
}

pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[derive(Debug, Clone)]
pub struct Moto {
    pub endpoint: String,
    child: Arc<Mutex<Option<Child>>>,
}

impl Moto {
    /// Starts moto and waits until it answers.
    pub fn start(binary: &Path) -> Result<Self, MotoError> {
        if !binary.exists() {
            return Err(MotoError::NotInstalled(binary.display().to_string()));
        }
        let port = free_port().map_err(|e| MotoError::Spawn(e.to_string()))?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let (tx, rx) = std::sync::mpsc::channel();
        let binary = binary.to_owned();
        // The keeper thread spawns the child and then waits on it, so that the parent-death
        // signal (tied to the spawning thread) fires only when the whole process ends.
        std::thread::Builder::new()
            .name("moto-keeper".into())
            .spawn(move || {
                let mut cmd = Command::new(&binary);
                cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                // SAFETY: prctl is async-signal-safe and touches only the child's own state.
                unsafe {
                    use std::os::unix::process::CommandExt;
                    cmd.pre_exec(|| {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                        Ok(())
                    });
                }
                match cmd.spawn() {
                    Ok(child) => {
                        let shared = Arc::new(Mutex::new(Some(child)));
                        let _ = tx.send(Ok(shared.clone()));
                        // Park for the life of the process; the child is killed by `stop`
                        // or by the parent-death signal.
                        loop {
                            std::thread::park();
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            })
            .map_err(|e| MotoError::Spawn(e.to_string()))?;
        let child = rx
            .recv()
            .map_err(|e| MotoError::Spawn(e.to_string()))?
            .map_err(MotoError::Spawn)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(MotoError::NotReady(endpoint));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Self { endpoint, child })
    }

    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One moto per process, for test binaries: `MOTO_ENDPOINT` if the test command started one.
pub fn shared_endpoint() -> Result<String, MotoError> {
    static SHARED: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();
    if let Ok(endpoint) = std::env::var("MOTO_ENDPOINT") {
        return Ok(endpoint);
    }
    SHARED
        .get_or_init(|| {
            Moto::start(&default_binary())
                .map(|m| m.endpoint.clone())
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(MotoError::Spawn)
}
