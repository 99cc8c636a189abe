//! The audit log: one record per served server method — who (user, how they were let in, the
//! key's digest), which server and method or tool, when, the outcome and the duration. Never
//! arguments, results or secrets. Records go to a file as JSON lines (written by a thread of
//! their own, so a slow disk never holds up a call) or, with no file configured, to the log
//! under the target `audit`.

use std::io::Write;
use std::path::Path;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;

use serde::Serialize;

use crate::config::AuditSettings;
use crate::metrics::{Metrics, Rejection};

/// Records waiting for the writer thread at most; past it a record is dropped and counted
/// rather than the call made to wait.
const BACKLOG: usize = 16_384;

/// One call, as the audit log keeps it.
#[derive(Debug, Serialize)]
pub struct AuditRecord<'a> {
    /// RFC 3339, UTC.
    pub at: String,
    /// The user (a digest when `logging.hash_user_ids` is on).
    pub user: &'a str,
    /// How the caller was let in: `open`, `api_keys`, `remote`, `oauth` or `stdio`.
    pub access: &'a str,
    /// The first 8 hex digits of the SHA-256 of the key the caller presented, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub server: &'a str,
    pub method: &'a str,
    /// The tool, prompt or resource URI the method named.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub target: &'a str,
    /// `ok`, `tool_error` or `error`.
    pub outcome: &'a str,
    pub duration_ms: f64,
    /// The task a `tools/call` created, or whose end this record is (method `task`, outcome
    /// its final state: `completed`, `failed`, `cancelled`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<&'a str>,
}

/// Where audit records go.
pub enum Audit {
    Off,
    Log,
    File {
        records: SyncSender<String>,
        metrics: Arc<Metrics>,
    },
}

/// Why the audit file could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the audit log {path} (audit.path): {source}")]
pub struct AuditError {
    path: String,
    source: std::io::Error,
}

impl Audit {
    pub fn from_settings(
        settings: &AuditSettings,
        metrics: Arc<Metrics>,
    ) -> Result<Audit, AuditError> {
        if !settings.enabled {
            return Ok(Audit::Off);
        }
        let Some(path) = &settings.path else {
            return Ok(Audit::Log);
        };
        let file = open_private(path).map_err(|source| AuditError {
            path: path.display().to_string(),
            source,
        })?;
        let (records, queue) = sync_channel::<String>(BACKLOG);
        std::thread::Builder::new()
            .name("audit".to_owned())
            .spawn(move || {
                let mut out = std::io::BufWriter::new(file);
                while let Ok(line) = queue.recv() {
                    let mut written = writeln!(out, "{line}");
                    // Flush once nothing more is waiting, so records reach the file promptly
                    // without a write per record under load.
                    while let Ok(more) = queue.try_recv() {
                        written = written.and_then(|()| writeln!(out, "{more}"));
                    }
                    if let Err(err) = written.and_then(|()| out.flush()) {
                        tracing::error!(%err, "the audit log could not be written");
                    }
                }
            })
            .map_err(|source| AuditError {
                path: path.display().to_string(),
                source,
            })?;
        Ok(Audit::File { records, metrics })
    }

    /// Whether a record would go anywhere: callers build one (a timestamp, a user label) only
    /// then, so an audit log that is off, or filtered out of the log, costs a call nothing.
    pub fn wants_records(&self) -> bool {
        match self {
            Audit::Off => false,
            Audit::Log => tracing::enabled!(target: "audit", tracing::Level::INFO),
            Audit::File { .. } => true,
        }
    }

    pub fn record(&self, record: &AuditRecord<'_>) {
        match self {
            Audit::Off => {}
            Audit::Log => tracing::info!(
                target: "audit",
                user = record.user,
                access = record.access,
                key = record.key.as_deref(),
                server = record.server,
                method = record.method,
                target = record.target,
                outcome = record.outcome,
                duration_ms = record.duration_ms,
                "call"
            ),
            Audit::File { records, metrics } => {
                let Ok(line) = serde_json::to_string(record) else {
                    return;
                };
                match records.try_send(line) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => metrics.rejected(Rejection::AuditBacklog),
                    Err(TrySendError::Disconnected(_)) => {
                        tracing::error!("the audit log writer has stopped");
                    }
                }
            }
        }
    }
}

/// Opens `path` for appending, created readable by its owner only.
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_reach_the_file_as_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let settings = AuditSettings {
            enabled: true,
            path: Some(path.clone()),
        };
        let audit = Audit::from_settings(&settings, Arc::new(Metrics::new())).unwrap();
        audit.record(&AuditRecord {
            at: "2026-12-03T00:00:00Z".into(),
            user: "alice",
            access: "api_keys",
            key: Some("ab12cd34".into()),
            server: "github",
            method: "tools/call",
            target: "list_repositories",
            outcome: "ok",
            duration_ms: 1.5,
            task: None,
        });
        drop(audit);
        let mut text = String::new();
        for _ in 0..100 {
            text = std::fs::read_to_string(&path).unwrap_or_default();
            if !text.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let record: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(record["target"], "list_repositories");
        assert_eq!(record["key"], "ab12cd34");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
