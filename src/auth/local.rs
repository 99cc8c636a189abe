//! guMCP's `local_auth/` folder, so an existing one works as it is:
//! `oauth_configs/<service>/oauth.json` and `credentials/<service>/<user_id>_credentials.json`.
//!
//! Service names and user ids are validated before they become path parts, so nothing a
//! caller sends can name a file outside the folder. Writes go to a temporary file in the same
//! folder, are synced, then renamed over the old file: a crash leaves the old file or the new
//! one, never a torn one. Files are 0600 and folders 0700.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use futures::future::BoxFuture;
use futures::FutureExt;

use super::credentials::{Credentials, OAuthApp};
use super::store::{AuthClient, AuthError};
use crate::ids;

pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> LocalStore {
        LocalStore { root: root.into() }
    }

    /// `credentials/<service>/<user>_credentials.json`, after checking both names.
    pub fn credentials_path(&self, service: &str, user: &str) -> Result<PathBuf, AuthError> {
        ids::validate_server_name(service)?;
        ids::validate_user_id(user)?;
        Ok(self
            .root
            .join("credentials")
            .join(service)
            .join(format!("{user}_credentials.json")))
    }

    pub fn oauth_app_path(&self, service: &str) -> Result<PathBuf, AuthError> {
        ids::validate_server_name(service)?;
        Ok(self
            .root
            .join("oauth_configs")
            .join(service)
            .join("oauth.json"))
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, AuthError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => {
            return Err(AuthError::Store(format!(
                "cannot read {}: {err}",
                path.display()
            )))
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|err| AuthError::Store(format!("{} is not valid: {err}", path.display())))
}

/// Replaces `path` with `bytes` atomically (temp file, fsync, rename, fsync of the folder).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let folder = path.parent().unwrap_or(Path::new("."));
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(folder)?;
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = folder.join(format!(
        ".{file_name}.{}.tmp",
        uuid::Uuid::new_v4().simple()
    ));
    let written = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        fs::File::open(folder)?.sync_all()
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written
}

impl AuthClient for LocalStore {
    fn credentials<'a>(
        &'a self,
        service: &'a str,
        user: &'a str,
        _caller_key: Option<&'a crate::auth::principal::PresentedKey>,
    ) -> BoxFuture<'a, Result<Option<Credentials>, AuthError>> {
        async move {
            let path = self.credentials_path(service, user)?;
            tokio::task::spawn_blocking(move || read_json(&path))
                .await
                .map_err(|err| AuthError::Store(err.to_string()))?
        }
        .boxed()
    }

    fn oauth_app<'a>(&'a self, service: &'a str) -> BoxFuture<'a, Result<OAuthApp, AuthError>> {
        async move {
            let path = self.oauth_app_path(service)?;
            let shown = path.display().to_string();
            let app = tokio::task::spawn_blocking(move || read_json::<OAuthApp>(&path))
                .await
                .map_err(|err| AuthError::Store(err.to_string()))??;
            app.ok_or_else(|| AuthError::NoOAuthApp {
                service: service.to_owned(),
                detail: format!("create {shown} with client_id, client_secret and redirect_uri"),
            })
        }
        .boxed()
    }

    fn save<'a>(
        &'a self,
        service: &'a str,
        user: &'a str,
        credentials: &'a Credentials,
    ) -> BoxFuture<'a, Result<(), AuthError>> {
        async move {
            let path = self.credentials_path(service, user)?;
            let bytes = serde_json::to_vec_pretty(credentials)
                .map_err(|err| AuthError::Store(err.to_string()))?;
            tokio::task::spawn_blocking(move || {
                write_atomically(&path, &bytes).map_err(|err| {
                    AuthError::Store(format!("cannot write {}: {err}", path.display()))
                })
            })
            .await
            .map_err(|err| AuthError::Store(err.to_string()))?
        }
        .boxed()
    }

    fn refreshes_here(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn saved_credentials_read_back_with_private_modes() {
        let root = tempfile::tempdir().unwrap();
        let store = LocalStore::new(root.path());
        let creds = Credentials {
            access_token: Some("a".into()),
            refresh_token: Some("r".into()),
            expires_at: Some(42),
            ..Credentials::default()
        };
        store.save("github", "alice", &creds).await.unwrap();
        let back = store.credentials("github", "alice", None).await.unwrap();
        assert_eq!(back, Some(creds));
        let path = store.credentials_path("github", "alice").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert!(path.ends_with("credentials/github/alice_credentials.json"));
    }

    #[tokio::test]
    async fn a_missing_file_is_no_credentials_and_a_missing_app_says_what_to_create() {
        let root = tempfile::tempdir().unwrap();
        let store = LocalStore::new(root.path());
        assert_eq!(
            store.credentials("github", "bob", None).await.unwrap(),
            None
        );
        let err = store.oauth_app("github").await.unwrap_err().to_string();
        assert!(err.contains("oauth_configs/github/oauth.json"), "{err}");
    }

    #[tokio::test]
    async fn names_that_could_escape_the_folder_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let store = LocalStore::new(root.path().join("local_auth"));
        for (service, user) in [
            ("github", "../alice"),
            ("github", "a/b"),
            ("github", "..%2F..%2Fetc"),
            ("github", "a\0b"),
            ("../etc", "alice"),
            ("GitHub/..", "alice"),
            ("github", ".."),
        ] {
            assert!(
                store.credentials_path(service, user).is_err(),
                "{service} {user}"
            );
            assert!(store
                .save(service, user, &Credentials::default())
                .await
                .is_err());
        }
        assert!(!root.path().join("etc").exists());
    }

    #[test]
    fn an_interrupted_write_leaves_the_old_file() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("f.json");
        write_atomically(&path, b"old").unwrap();
        // A write that cannot complete (its folder is a file) fails without touching the old.
        let blocked = root.path().join("f.json").join("x.json");
        assert!(write_atomically(&blocked, b"new").is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old");
        let leftovers: Vec<_> = fs::read_dir(root.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }
}
