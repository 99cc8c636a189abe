//! guMCP's `local_auth/` folder, so an existing one works as it is:
//! `oauth_configs/<service>/oauth.json` and `credentials/<service>/<user_id>_credentials.json`.
//!
//! Service names and user ids are validated before they become path parts, so nothing a
//! caller sends can name a file outside the folder. Writes go to a temporary file in the same
//! folder, are synced, then renamed over the old file: a crash leaves the old file or the new
//! one, never a torn one. On unix, files are 0600 and folders 0700; on Windows they take the
//! access list of the folder they are in, so `auth.local_dir` belongs under the user's profile
//! (`%APPDATA%`), whose list admits only that user, SYSTEM and administrators.
//!
//! User ids are case-sensitive, but a case-insensitive file system (macOS, Windows shares,
//! casefolded folders) opens `Alice_credentials.json` for `alice_credentials.json`, which would
//! hand one user another's tokens. So an id with an uppercase letter is stored as
//! `<id in lowercase>~<digest of the exact id>_credentials.json`: `~` is not allowed in ids,
//! so no two ids get names that differ only in case. Ids without uppercase letters, guMCP's
//! usual case, keep guMCP's name. guMCP's exact-case file for an uppercase id is still read
//! (not written) while the new one does not exist yet; every file is read only when it is
//! stored under exactly the name asked for. This was chosen over refusing, when saving, an
//! id that collides with a stored one: that would keep one of two legitimate users from ever
//! connecting. The one refusal left is a lowercase id whose name, on a file system that
//! ignores case, is taken by guMCP's file of an uppercase id: writing would replace that
//! user's credentials.

use std::fs;
use std::io::Write;
#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use futures::future::BoxFuture;
use futures::FutureExt;
use sha2::Digest;

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

    /// Where `user`'s credentials for `service` are written (see the module docs for the
    /// name), after checking both names.
    pub fn credentials_path(&self, service: &str, user: &str) -> Result<PathBuf, AuthError> {
        ids::validate_server_name(service)?;
        ids::validate_user_id(user)?;
        Ok(self
            .root
            .join("credentials")
            .join(service)
            .join(file_name(user)))
    }

    /// guMCP's exact-case file of an id with uppercase letters, read until the new one exists.
    fn legacy_credentials_path(&self, service: &str, user: &str) -> Option<PathBuf> {
        user.bytes().any(|b| b.is_ascii_uppercase()).then(|| {
            self.root
                .join("credentials")
                .join(service)
                .join(format!("{user}_credentials.json"))
        })
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

/// A credential file name that no other user id's name equals, even ignoring ASCII case.
fn file_name(user: &str) -> String {
    if !user.bytes().any(|b| b.is_ascii_uppercase()) {
        return format!("{user}_credentials.json");
    }
    let digest = sha2::Sha256::digest(user.as_bytes());
    format!(
        "{}~{}_credentials.json",
        user.to_ascii_lowercase(),
        hex::encode(&digest[..8])
    )
}

/// What a `local_auth/` folder holds, as `auth import` copies it: the services with an OAuth
/// app, every (service, user) with a credentials file, and the files that name neither.
#[derive(Debug, Default)]
pub struct LocalListing {
    pub apps: Vec<String>,
    pub accounts: Vec<(String, String)>,
    pub skipped: Vec<String>,
}

/// Letters of an id whose exact case is searched for (2^letters digests at most): beyond
/// that, a file with a digest name is reported, not read.
const MAX_CASE_SEARCH_LETTERS: u32 = 20;

impl LocalStore {
    /// Every OAuth app and account in the folder. A digest name (an id with uppercase letters)
    /// gives its id back by finding the case whose digest it carries.
    pub fn list(&self) -> Result<LocalListing, AuthError> {
        if !self.root.is_dir() {
            return Err(AuthError::Store(format!(
                "there is no local_auth folder at {}",
                self.root.display()
            )));
        }
        let mut listing = LocalListing::default();
        let read_dir = |dir: &Path| -> Result<Vec<fs::DirEntry>, AuthError> {
            match fs::read_dir(dir) {
                Ok(entries) => entries.collect::<Result<_, _>>().map_err(|err| {
                    AuthError::Store(format!("cannot list {}: {err}", dir.display()))
                }),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
                Err(err) => Err(AuthError::Store(format!(
                    "cannot list {}: {err}",
                    dir.display()
                ))),
            }
        };
        for entry in read_dir(&self.root.join("oauth_configs"))? {
            let service = entry.file_name().to_string_lossy().into_owned();
            if ids::validate_server_name(&service).is_ok()
                && entry.path().join("oauth.json").is_file()
            {
                listing.apps.push(service);
            }
        }
        for folder in read_dir(&self.root.join("credentials"))? {
            let service = folder.file_name().to_string_lossy().into_owned();
            if ids::validate_server_name(&service).is_err() {
                listing
                    .skipped
                    .push(format!("{}: not a server name", folder.path().display()));
                continue;
            }
            let mut users = Vec::new();
            for file in read_dir(&folder.path())? {
                let name = file.file_name().to_string_lossy().into_owned();
                let Some(stem) = name.strip_suffix("_credentials.json") else {
                    continue;
                };
                let user = match stem.split_once('~') {
                    Some((lower, digest)) => exact_case_id(lower, digest),
                    None => Some(stem.to_owned()),
                };
                match user.filter(|user| ids::validate_user_id(user).is_ok()) {
                    Some(user) => users.push(user),
                    None => listing.skipped.push(format!(
                        "{}: the user id cannot be read from the file name",
                        file.path().display()
                    )),
                }
            }
            users.sort();
            users.dedup();
            listing
                .accounts
                .extend(users.into_iter().map(|user| (service.clone(), user)));
        }
        listing.apps.sort();
        listing.accounts.sort();
        Ok(listing)
    }
}

/// The id whose lowercase form is `lower` and whose digest name carries `digest` (see
/// [`file_name`]), found by trying the case of each letter.
fn exact_case_id(lower: &str, digest: &str) -> Option<String> {
    let letters: Vec<usize> = lower
        .bytes()
        .enumerate()
        .filter(|(_, b)| b.is_ascii_lowercase())
        .map(|(at, _)| at)
        .collect();
    let count = u32::try_from(letters.len()).ok()?;
    if count > MAX_CASE_SEARCH_LETTERS {
        return None;
    }
    let mut candidate = lower.as_bytes().to_vec();
    for cases in 0u32..(1 << count) {
        for (bit, &at) in letters.iter().enumerate() {
            candidate[at] = if cases & (1 << bit) == 0 {
                candidate[at].to_ascii_lowercase()
            } else {
                candidate[at].to_ascii_uppercase()
            };
        }
        let sum = sha2::Sha256::digest(&candidate);
        if hex::encode(&sum[..8]) == digest {
            return String::from_utf8(candidate).ok();
        }
    }
    None
}

/// Whether `path` exists under exactly its own name, not merely as a file a case-insensitive
/// file system opens under that name. Only where the folder may ignore case is it listed.
fn stored_exactly(path: &Path) -> std::io::Result<bool> {
    let found = match fs::metadata(path) {
        Ok(found) => found,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(err) => return Err(err),
    };
    let (Some(folder), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(true);
    };
    if !may_ignore_case(folder, name, &found) {
        return Ok(true);
    }
    for entry in fs::read_dir(folder)? {
        if entry?.file_name() == name {
            return Ok(true);
        }
    }
    Ok(false)
}

/// On unix, whether the case-swapped `name` opens the same file (`found`): a folder is listed
/// only when it shows that it ignores case, so a folder of many users is not read per lookup.
#[cfg(unix)]
fn may_ignore_case(folder: &Path, name: &std::ffi::OsStr, found: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    let swapped: String = name
        .to_string_lossy()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    fs::metadata(folder.join(swapped))
        .is_ok_and(|other| other.dev() == found.dev() && other.ino() == found.ino())
}

/// Elsewhere (Windows) the file's identity is not in std's stable metadata, and its file
/// systems ignore case by default: always assumed.
#[cfg(not(unix))]
fn may_ignore_case(_folder: &Path, _name: &std::ffi::OsStr, _found: &fs::Metadata) -> bool {
    true
}

/// The credentials at the first of `paths` stored under exactly that name.
fn read_credentials(paths: &[PathBuf]) -> Result<Option<Credentials>, AuthError> {
    for path in paths {
        let exact = stored_exactly(path)
            .map_err(|err| AuthError::Store(format!("cannot read {}: {err}", path.display())))?;
        if exact {
            return read_json(path);
        }
    }
    Ok(None)
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
    let mut folders = fs::DirBuilder::new();
    folders.recursive(true);
    #[cfg(unix)]
    folders.mode(0o700);
    folders.create(folder)?;
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = folder.join(format!(
        ".{file_name}.{}.tmp",
        uuid::Uuid::new_v4().simple()
    ));
    let written = (|| {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        options.mode(0o600);
        let mut file = options.open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        sync_folder(folder)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written
}

/// Makes a rename in `folder` durable: on unix, by syncing the folder.
#[cfg(unix)]
fn sync_folder(folder: &Path) -> std::io::Result<()> {
    fs::File::open(folder)?.sync_all()
}

/// Windows cannot open a folder as a file to sync it (std opens without backup semantics): the
/// rename is on disk once the file system flushes its metadata, so a crash just after a save
/// may bring back the old file — still never a torn one.
#[cfg(not(unix))]
fn sync_folder(_folder: &Path) -> std::io::Result<()> {
    Ok(())
}

impl AuthClient for LocalStore {
    fn credentials<'a>(
        &'a self,
        service: &'a str,
        user: &'a str,
        _caller_key: Option<&'a crate::auth::principal::PresentedKey>,
    ) -> BoxFuture<'a, Result<Option<Credentials>, AuthError>> {
        async move {
            let mut paths = vec![self.credentials_path(service, user)?];
            paths.extend(self.legacy_credentials_path(service, user));
            tokio::task::spawn_blocking(move || read_credentials(&paths))
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
                let failed = |err: std::io::Error| {
                    AuthError::Store(format!("cannot write {}: {err}", path.display()))
                };
                // Only guMCP's file of an id differing in case, on a file system that ignores
                // case, can be in the way; writing would replace that user's credentials.
                if path.exists() && !stored_exactly(&path).map_err(failed)? {
                    return Err(AuthError::Store(format!(
                        "cannot write {}: a credential file of a user id that differs only in \
                         case is stored there (this file system ignores case)",
                        path.display()
                    )));
                }
                write_atomically(&path, &bytes).map_err(failed)
            })
            .await
            .map_err(|err| AuthError::Store(err.to_string()))?
        }
        .boxed()
    }

    fn delete<'a>(
        &'a self,
        service: &'a str,
        user: &'a str,
    ) -> BoxFuture<'a, Result<bool, AuthError>> {
        async move {
            let mut paths = vec![self.credentials_path(service, user)?];
            paths.extend(self.legacy_credentials_path(service, user));
            tokio::task::spawn_blocking(move || {
                let mut deleted = false;
                for path in paths {
                    // Only a file stored under exactly this name is this user's (see the
                    // module docs); another's, found through a case-blind file system, stays.
                    if !stored_exactly(&path).unwrap_or(false) {
                        continue;
                    }
                    fs::remove_file(&path).map_err(|err| {
                        AuthError::Store(format!("cannot delete {}: {err}", path.display()))
                    })?;
                    deleted = true;
                }
                Ok(deleted)
            })
            .await
            .map_err(|err| AuthError::Store(err.to_string()))?
        }
        .boxed()
    }

    fn location(&self, service: &str, user: &str) -> String {
        match self.credentials_path(service, user) {
            Ok(path) => path.display().to_string(),
            Err(_) => format!("the local store in {}", self.root.display()),
        }
    }

    fn refreshes_here(&self) -> bool {
        true
    }

    fn connects_here(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[tokio::test]
    async fn saved_credentials_read_back_with_private_modes() {
        use std::os::unix::fs::PermissionsExt;
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
    fn user_ids_differing_only_in_case_get_names_that_differ_ignoring_case() {
        let root = tempfile::tempdir().unwrap();
        let store = LocalStore::new(root.path());
        // '~' marks the digest names; no user id can hold it.
        assert!(ids::validate_user_id("alice~1").is_err());
        let names: Vec<String> = ["alice", "Alice", "ALICE", "aLiCe", "bob"]
            .iter()
            .map(|id| {
                let path = store.credentials_path("github", id).unwrap();
                path.file_name().unwrap().to_string_lossy().into_owned()
            })
            .collect();
        assert_eq!(names[0], "alice_credentials.json", "guMCP's name is kept");
        assert!(names[1].starts_with("alice~"), "{}", names[1]);
        for (i, a) in names.iter().enumerate() {
            for b in &names[i + 1..] {
                assert!(!a.eq_ignore_ascii_case(b), "{a} and {b}");
            }
        }
    }

    #[tokio::test]
    async fn alice_and_alice_in_another_case_keep_their_own_credentials() {
        let root = tempfile::tempdir().unwrap();
        let store = LocalStore::new(root.path());
        let token = |t: &str| Credentials {
            access_token: Some(t.into()),
            ..Credentials::default()
        };
        store
            .save("github", "alice", &token("lower"))
            .await
            .unwrap();
        assert_eq!(
            store.credentials("github", "Alice", None).await.unwrap(),
            None
        );
        store
            .save("github", "Alice", &token("upper"))
            .await
            .unwrap();
        let read = |user| store.credentials("github", user, None);
        assert_eq!(read("alice").await.unwrap(), Some(token("lower")));
        assert_eq!(read("Alice").await.unwrap(), Some(token("upper")));
        assert_eq!(read("ALICE").await.unwrap(), None);
    }

    #[tokio::test]
    async fn gumcps_exact_case_file_is_read_until_the_new_one_is_written() {
        let root = tempfile::tempdir().unwrap();
        let store = LocalStore::new(root.path());
        let folder = root.path().join("credentials/github");
        fs::create_dir_all(&folder).unwrap();
        fs::write(
            folder.join("Alice_credentials.json"),
            r#"{"access_token": "from-gumcp"}"#,
        )
        .unwrap();
        let read = || store.credentials("github", "Alice", None);
        let legacy = read().await.unwrap().unwrap();
        assert_eq!(legacy.access_token.as_deref(), Some("from-gumcp"));
        assert_eq!(
            store.credentials("github", "alice", None).await.unwrap(),
            None
        );
        let fresh = Credentials {
            access_token: Some("refreshed".into()),
            ..Credentials::default()
        };
        store.save("github", "Alice", &fresh).await.unwrap();
        assert_eq!(read().await.unwrap(), Some(fresh));
        let written = store.credentials_path("github", "Alice").unwrap();
        assert_ne!(written, folder.join("Alice_credentials.json"));
        assert!(written.exists());
    }

    #[tokio::test]
    async fn a_listing_finds_every_app_and_account_with_its_exact_id() {
        let root = tempfile::tempdir().unwrap();
        let store = LocalStore::new(root.path());
        let token = Credentials {
            access_token: Some("t".into()),
            ..Credentials::default()
        };
        for (service, user) in [("github", "alice"), ("github", "Alice-2"), ("slack", "bob")] {
            store.save(service, user, &token).await.unwrap();
        }
        let app = store.oauth_app_path("github").unwrap();
        fs::create_dir_all(app.parent().unwrap()).unwrap();
        fs::write(&app, r#"{"client_id": "c"}"#).unwrap();
        fs::write(
            root.path().join("credentials/github/x~00_credentials.json"),
            "{}",
        )
        .unwrap();
        let listing = store.list().unwrap();
        assert_eq!(listing.apps, ["github"]);
        let accounts: Vec<(&str, &str)> = listing
            .accounts
            .iter()
            .map(|(s, u)| (s.as_str(), u.as_str()))
            .collect();
        assert_eq!(
            accounts,
            [("github", "Alice-2"), ("github", "alice"), ("slack", "bob")]
        );
        assert_eq!(listing.skipped.len(), 1, "{:?}", listing.skipped);
        assert!(listing.skipped[0].contains("x~00"));
        let missing = LocalStore::new(root.path().join("nowhere")).list();
        assert!(missing
            .unwrap_err()
            .to_string()
            .contains("no local_auth folder"));
    }

    #[test]
    fn a_file_is_stored_exactly_only_under_its_own_name() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("Alice_credentials.json");
        assert!(!stored_exactly(&path).unwrap());
        fs::write(&path, "{}").unwrap();
        assert!(stored_exactly(&path).unwrap());
        assert!(!stored_exactly(&root.path().join("alice_credentials.json")).unwrap());
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
