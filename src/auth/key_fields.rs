//! API-key servers whose credential is more than one value (Discourse's forum URL, key and
//! user name; Twilio's account SID, key SID and secret): the manifest lists the values as
//! `[[auth.key_fields]]`, and the `auth` command and the web connect form ask for each.
//!
//! The values are stored flat beside each other under their `name`s (`api_key` is the key
//! itself), which is the shape guMCP's own prompts save. guMCP's Gumloop store hands some of
//! them back as `{"metadata": [{"name": <label>, "value": …}], "value": <key>}`; [`value_of`]
//! reads both shapes, so credentials from either store work unchanged.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::credentials::Credentials;

/// Where the key itself is stored.
pub const API_KEY: &str = "api_key";

/// One value a user gives when connecting.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyField {
    /// The credential's field it is stored in (`api_key` for the key; else guMCP's name).
    pub name: String,
    /// What the prompt and the form call it; guMCP's metadata names it the same way unless
    /// `metadata_name` says otherwise.
    pub label: String,
    /// guMCP's metadata name for it, where the label differs (Snowflake's token is its
    /// "Password").
    pub metadata_name: Option<String>,
    /// An example shown in the empty form field.
    pub placeholder: Option<String>,
    /// Typed at a hidden prompt and a password field.
    #[serde(default)]
    pub secret: bool,
    /// May be left empty (then not stored).
    #[serde(default)]
    pub optional: bool,
    /// What the value must be.
    #[serde(default)]
    pub check: FieldCheck,
}

/// A check a field's value must pass before it is stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldCheck {
    #[default]
    Text,
    /// The root of a service the user runs (a Discourse forum): see [`site_url`].
    SiteUrl,
}

/// Why typed values cannot be stored; says which field, never the value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyFieldError {
    #[error("{label} was empty")]
    Missing { label: String },
    #[error("{label}: {reason}")]
    Invalid { label: String, reason: String },
}

/// The manifest's fields are usable: names unique and plain, labels given.
pub fn check_fields(fields: &[KeyField]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for field in fields {
        let plain = !field.name.is_empty()
            && field
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !plain {
            return Err(format!(
                "auth.key_fields: name {:?} must be lowercase letters, digits and _",
                field.name
            ));
        }
        if field.label.trim().is_empty() {
            return Err(format!("auth.key_fields: {} needs a label", field.name));
        }
        if !seen.insert(field.name.as_str()) {
            return Err(format!("auth.key_fields: {} is listed twice", field.name));
        }
    }
    Ok(())
}

/// The credentials to store from the values typed, by field name: each checked, trimmed, a
/// site URL without its trailing `/`.
pub fn credentials_from(
    fields: &[KeyField],
    typed: &BTreeMap<String, String>,
) -> Result<Credentials, KeyFieldError> {
    let mut credentials = Credentials::default();
    for field in fields {
        let value = typed.get(&field.name).map_or("", |value| value.trim());
        if value.is_empty() {
            if field.optional {
                continue;
            }
            return Err(KeyFieldError::Missing {
                label: field.label.clone(),
            });
        }
        let value = match field.check {
            FieldCheck::Text => value.to_owned(),
            FieldCheck::SiteUrl => site_url(value).map_err(|reason| KeyFieldError::Invalid {
                label: field.label.clone(),
                reason,
            })?,
        };
        if field.name == API_KEY {
            credentials.api_key = Some(value);
        } else {
            credentials
                .extra
                .insert(field.name.clone(), Value::String(value));
        }
    }
    Ok(credentials)
}

/// The field that holds the key sent upstream: `api_key`, else the only secret field.
pub fn key_field(fields: &[KeyField]) -> Option<&KeyField> {
    fields
        .iter()
        .find(|field| field.name == API_KEY)
        .or_else(
            || match fields.iter().filter(|f| f.secret).collect::<Vec<_>>()[..] {
                [only] => Some(only),
                _ => None,
            },
        )
}

/// What to store for the values typed into a server's `fields`: the credentials
/// [`credentials_from`] makes, or — for a server with `[auth.session]` — the session they are
/// traded for (the password is not kept). The error is the sentence to show.
pub async fn connect_values(
    fields: &[KeyField],
    session: Option<&super::session::SessionSpec>,
    typed: &BTreeMap<String, String>,
    http: crate::upstream::CappedClient<'_>,
) -> Result<Credentials, String> {
    let credentials = credentials_from(fields, typed).map_err(|err| err.to_string())?;
    let Some(session) = session else {
        return Ok(credentials);
    };
    let field = |name: &str| {
        fields
            .iter()
            .find(|field| field.name == name)
            .and_then(|field| value_of(&credentials, field))
            .unwrap_or_default()
    };
    super::session::create(
        http,
        &session.create_url,
        field(&session.identifier),
        field(&session.password),
    )
    .await
    .map_err(|err| err.to_string())
}

/// The value of `field` in stored credentials: its own field, else guMCP's metadata shape
/// (the item labelled as the field, or `value` for the key). Empty counts as absent.
pub fn value_of<'a>(credentials: &'a Credentials, field: &KeyField) -> Option<&'a str> {
    let flat = if field.name == API_KEY {
        credentials.api_key.as_deref()
    } else {
        credentials.extra.get(&field.name).and_then(Value::as_str)
    };
    let metadata_name = field.metadata_name.as_deref().unwrap_or(&field.label);
    let from_metadata = || {
        if field.name == API_KEY {
            return credentials.extra.get("value").and_then(Value::as_str);
        }
        credentials
            .extra
            .get("metadata")?
            .as_array()?
            .iter()
            .find(|item| item.get("name").and_then(Value::as_str) == Some(metadata_name))?
            .get("value")?
            .as_str()
    };
    flat.or_else(from_metadata)
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// A site's root URL as given by a user, checked before anything is sent to it: `https`, a
/// host, no user name or password, no query or fragment; returned without a trailing `/`.
/// (Tests reach a loopback mock through the config's base-URL override, never through this.)
pub fn site_url(given: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(given.trim())
        .map_err(|_| "must be a URL such as https://forum.example.com".to_owned())?;
    if url.scheme() != "https" {
        return Err("must start with https://".to_owned());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not carry a query or fragment".to_owned());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Reads every field for `service` on the terminal (a secret one at a hidden prompt), or one
/// line each from standard input when it is not a terminal.
pub fn read_fields(
    service: &str,
    fields: &[KeyField],
) -> Result<BTreeMap<String, String>, std::io::Error> {
    use std::io::{BufRead, IsTerminal, Write};
    let terminal = std::io::stdin().is_terminal();
    let mut typed = BTreeMap::new();
    for field in fields {
        let optional = if field.optional { ", optional" } else { "" };
        let value = if !terminal {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line
        } else if field.secret {
            rpassword::prompt_password(format!(
                "{} for {service} (input hidden{optional}): ",
                field.label
            ))?
        } else {
            let example = field
                .placeholder
                .as_deref()
                .map(|example| format!(", e.g. {example}"))
                .unwrap_or_default();
            let mut stdout = std::io::stdout().lock();
            write!(stdout, "{} for {service}{example}{optional}: ", field.label)?;
            stdout.flush()?;
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line
        };
        typed.insert(field.name.clone(), value.trim().to_owned());
    }
    Ok(typed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(name: &str, label: &str, check: FieldCheck) -> KeyField {
        KeyField {
            name: name.into(),
            label: label.into(),
            metadata_name: None,
            placeholder: None,
            secret: false,
            optional: false,
            check,
        }
    }

    fn discourse() -> Vec<KeyField> {
        vec![
            field("base_url", "Discourse URL", FieldCheck::SiteUrl),
            field(API_KEY, "API key", FieldCheck::Text),
            field("username", "Username", FieldCheck::Text),
        ]
    }

    #[test]
    fn typed_values_are_stored_flat_as_gumcp_saves_them() {
        let typed = BTreeMap::from([
            (
                "base_url".to_owned(),
                " https://forum.example.com/ ".to_owned(),
            ),
            (API_KEY.to_owned(), "k1".to_owned()),
            ("username".to_owned(), "system".to_owned()),
        ]);
        let credentials = credentials_from(&discourse(), &typed).unwrap();
        assert_eq!(
            serde_json::to_value(&credentials).unwrap(),
            json!({ "api_key": "k1", "base_url": "https://forum.example.com", "username": "system" })
        );
        let missing = credentials_from(&discourse(), &BTreeMap::new()).unwrap_err();
        assert_eq!(missing.to_string(), "Discourse URL was empty");
    }

    #[test]
    fn gumcp_metadata_shape_is_read_too() {
        let stored: Credentials = serde_json::from_value(json!({
            "metadata": [
                { "name": "Username", "placeholder": "x", "value": "system" },
                { "name": "Discourse URL", "value": "https://forum.example.com" }
            ],
            "value": "k2"
        }))
        .unwrap();
        let fields = discourse();
        let values: Vec<_> = fields.iter().map(|f| value_of(&stored, f)).collect();
        assert_eq!(
            values,
            [
                Some("https://forum.example.com"),
                Some("k2"),
                Some("system")
            ]
        );
    }

    #[test]
    fn the_key_is_api_key_else_the_only_secret_field_named_as_gumcp_names_it() {
        let mut token = field("password", "Programmatic access token", FieldCheck::Text);
        token.secret = true;
        token.metadata_name = Some("Password".into());
        let fields = vec![
            field("account", "Account Identifier", FieldCheck::Text),
            token,
        ];
        let key = key_field(&fields).unwrap();
        assert_eq!(key.name, "password");
        let stored: Credentials = serde_json::from_value(json!({
            "metadata": [{ "name": "Password", "value": "pat-1" }]
        }))
        .unwrap();
        assert_eq!(value_of(&stored, key), Some("pat-1"));
        assert_eq!(key_field(&discourse()).unwrap().name, API_KEY);
    }

    #[test]
    fn a_site_url_is_https_without_credentials_or_query() {
        assert_eq!(
            site_url("https://forum.example.com/community/").unwrap(),
            "https://forum.example.com/community"
        );
        for bad in [
            "http://forum.example.com",
            "https://user:pw@forum.example.com",
            "https://forum.example.com/?api_key=x",
            "https://forum.example.com/#top",
            "forum.example.com",
            "file:///etc/passwd",
        ] {
            assert!(site_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fields_must_be_plain_and_unique() {
        assert!(check_fields(&discourse()).is_ok());
        let mut twice = discourse();
        twice.push(field("username", "Again", FieldCheck::Text));
        assert!(check_fields(&twice).unwrap_err().contains("twice"));
        assert!(check_fields(&[field("Bad Name", "x", FieldCheck::Text)]).is_err());
    }
}
