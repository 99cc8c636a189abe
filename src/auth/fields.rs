//! Named values a user's credential carries beside its secret (`[[auth.fields]]` in
//! `server.toml`): a Zendesk or Shopify subdomain, Salesforce's instance URL, Mailchimp's data
//! center, a QuickBooks realm id, a DocuSign account. They are stored in the credential's JSON
//! under their own names (guMCP's names where it has them), and fill `{name}` placeholders of
//! the server's base URL and OAuth endpoints — so each user's requests go to that user's host.
//!
//! A value may come from the user (asked when connecting), from the OAuth app's config (an
//! operator's `oauth.json` naming the one instance its app belongs to, as guMCP reads
//! `custom_subdomain`), from the token answer, from the OAuth redirect's query, or from an
//! endpoint read with the new token. Wherever it comes from, it must pass its field's format
//! when it is taken and again each time it fills a template: a value that ends up in a host
//! name or a path can never point a request at another host, nor add a path, a query or a
//! port.

use serde::Deserialize;
use serde_json::{Map, Value};

/// One declared field.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthField {
    /// Its key in the stored credential and its `{placeholder}` in templates.
    pub name: String,
    /// How the prompt and the connect page ask for it.
    pub label: String,
    #[serde(default)]
    pub from: FieldSource,
    pub format: FieldFormat,
    /// For `format = "origin"`: the host suffixes allowed (each starting with a `.`).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// For `from = "response"`: the endpoint read (GET, with the new access token).
    pub url: Option<String>,
    /// For `from = "response"`: the `Authorization` scheme the endpoint wants the token
    /// under (Mailchimp's metadata endpoint documents `OAuth`); `Bearer` when unset.
    pub scheme: Option<String>,
    /// For `from = "token"` and `"response"`: where the value is in the JSON answer, as a
    /// JSON pointer whose segments may pick an array's item by a member's value
    /// (`/accounts/[is_default=true]/base_uri`); `/<name>` when unset.
    pub select: Option<String>,
}

/// Where a field's value comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldSource {
    /// Asked of the user when connecting, unless the OAuth app's config names it.
    #[default]
    User,
    /// A member of the token endpoint's answer (Salesforce's `instance_url`).
    Token,
    /// A query parameter of the OAuth redirect (QuickBooks' `realmId`).
    Redirect,
    /// A member of the answer of `url`, read with the new access token (Mailchimp's data
    /// center from its metadata endpoint, DocuSign's account from `userinfo`).
    Response,
}

/// What a field's value must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldFormat {
    /// One DNS label: `[a-z0-9-]`, 1 to 63 characters, not starting or ending with `-`
    /// (taken in lower case).
    Label,
    /// 1 to 32 decimal digits.
    Digits,
    /// An identifier safe as one path segment: `[A-Za-z0-9_-]`, 1 to 64 characters.
    Id,
    /// An `https://host` origin (no user, port, path, query or fragment) whose host ends with
    /// one of `hosts`; kept without a trailing `/`.
    Origin,
}

/// Why a field's value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("the account has no {label}; reconnect it")]
    Missing { label: String },
    #[error("{label}: {why}")]
    Invalid { label: String, why: String },
}

impl AuthField {
    /// The manifest's promises about this field, checked at load.
    pub fn check(&self) -> Result<(), String> {
        let named = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !self.name.starts_with(|c: char| c.is_ascii_digit());
        if !named {
            return Err(format!(
                "auth.fields: {:?} must be letters, digits and _",
                self.name
            ));
        }
        if self.label.trim().is_empty() {
            return Err(format!(
                "auth.fields {}: label must not be empty",
                self.name
            ));
        }
        if self.format == FieldFormat::Origin
            && (self.hosts.is_empty() || self.hosts.iter().any(|h| !h.starts_with('.')))
        {
            return Err(format!(
                "auth.fields {}: an origin needs hosts, each a suffix starting with \".\"",
                self.name
            ));
        }
        match (self.from, &self.url) {
            (FieldSource::Response, None) => Err(format!(
                "auth.fields {}: from = \"response\" needs url",
                self.name
            )),
            (FieldSource::Response, Some(url))
                if !(url.starts_with("https://") || url.starts_with("http://")) =>
            {
                Err(format!(
                    "auth.fields {}: url must be an http(s) URL",
                    self.name
                ))
            }
            (FieldSource::Response, Some(_)) => Ok(()),
            (_, Some(_)) => Err(format!(
                "auth.fields {}: url is only for from = \"response\"",
                self.name
            )),
            (_, None) => Ok(()),
        }
    }

    /// `raw` as this field stores it, or why it is refused.
    pub fn accept(&self, raw: &str) -> Result<String, FieldError> {
        let invalid = |why: &str| FieldError::Invalid {
            label: self.label.clone(),
            why: why.to_owned(),
        };
        let raw = raw.trim();
        match self.format {
            FieldFormat::Label => {
                let label = raw.to_ascii_lowercase();
                let fits = (1..=63).contains(&label.len())
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-');
                if fits {
                    Ok(label)
                } else {
                    Err(invalid(
                        "must be one name of letters, digits and - (at most 63 characters)",
                    ))
                }
            }
            FieldFormat::Digits => {
                if (1..=32).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_digit()) {
                    Ok(raw.to_owned())
                } else {
                    Err(invalid("must be digits only"))
                }
            }
            FieldFormat::Id => {
                let fits = (1..=64).contains(&raw.len())
                    && raw
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if fits {
                    Ok(raw.to_owned())
                } else {
                    Err(invalid("must be letters, digits, - and _ only"))
                }
            }
            FieldFormat::Origin => self.origin(raw).ok_or_else(|| {
                invalid(&format!(
                    "must be an https:// address on {}",
                    self.hosts.join(" or ")
                ))
            }),
        }
    }

    fn origin(&self, raw: &str) -> Option<String> {
        let url = reqwest::Url::parse(raw).ok()?;
        let plain = url.scheme() == "https"
            && url.username().is_empty()
            && url.password().is_none()
            && url.port().is_none()
            && url.query().is_none()
            && url.fragment().is_none()
            && url.path() == "/";
        // `domain` is none for an IP address.
        let host = url.domain()?.to_ascii_lowercase();
        let allowed = self.hosts.iter().any(|suffix| {
            let suffix = suffix.to_ascii_lowercase();
            host.len() > suffix.len() && host.ends_with(&suffix)
        });
        (plain && allowed).then(|| format!("https://{host}"))
    }

    /// The selector of a value in a JSON answer.
    fn selector(&self) -> String {
        self.select
            .clone()
            .unwrap_or_else(|| format!("/{}", self.name))
    }

    /// This field's value taken from a JSON answer (the token's, or its `url`'s).
    pub fn pick(&self, answer: &Value) -> Result<String, FieldError> {
        let missing = || FieldError::Missing {
            label: self.label.clone(),
        };
        let value = select(answer, &self.selector()).ok_or_else(missing)?;
        match value {
            Value::String(text) => self.accept(text),
            Value::Number(number) => self.accept(&number.to_string()),
            _ => Err(missing()),
        }
    }
}

/// The stored value of `field` in `values` (a credential's extra members), checked again.
pub fn stored(field: &AuthField, values: &Map<String, Value>) -> Result<String, FieldError> {
    match values.get(&field.name) {
        Some(Value::String(text)) => field.accept(text),
        Some(Value::Number(number)) => field.accept(&number.to_string()),
        _ => Err(FieldError::Missing {
            label: field.label.clone(),
        }),
    }
}

/// The `{name}` placeholders of `template`.
pub fn placeholders(template: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        names.push(&rest[open + 1..open + close]);
        rest = &rest[open + close + 1..];
    }
    names
}

/// `template` with each `{name}` of a declared field replaced by its value in `values`,
/// checked against the field's format; other placeholders stay as they are.
pub fn fill(
    template: &str,
    fields: &[AuthField],
    values: &Map<String, Value>,
) -> Result<String, FieldError> {
    let mut filled = template.to_owned();
    for name in placeholders(template) {
        if let Some(field) = fields.iter().find(|field| field.name == name) {
            filled = filled.replace(&format!("{{{name}}}"), &stored(field, values)?);
        }
    }
    Ok(filled)
}

/// Whether `template` names any of `fields`.
pub fn names_a_field(template: &str, fields: &[AuthField]) -> bool {
    placeholders(template)
        .iter()
        .any(|name| fields.iter().any(|field| field.name == *name))
}

/// The value at `selector` in `value`: a JSON pointer whose segments may be `[key=value]`,
/// which picks the first item of an array whose `key` member prints as `value`.
pub fn select<'v>(value: &'v Value, selector: &str) -> Option<&'v Value> {
    let mut current = value;
    for segment in selector.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        current = match segment
            .strip_prefix('[')
            .and_then(|inner| inner.strip_suffix(']'))
            .and_then(|inner| inner.split_once('='))
        {
            Some((key, wanted)) => current.as_array()?.iter().find(|item| {
                item.get(key).is_some_and(|member| match member {
                    Value::String(text) => text == wanted,
                    other => other.to_string().as_str() == wanted,
                })
            })?,
            None => match current {
                Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
                Value::Object(members) => members.get(&segment)?,
                _ => return None,
            },
        };
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(name: &str, format: FieldFormat, hosts: &[&str]) -> AuthField {
        AuthField {
            name: name.into(),
            label: format!("the {name}"),
            from: FieldSource::User,
            format,
            hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
            url: None,
            scheme: None,
            select: None,
        }
    }

    #[test]
    fn a_label_is_one_dns_name_and_nothing_that_moves_the_host() {
        let subdomain = field("custom_subdomain", FieldFormat::Label, &[]);
        assert_eq!(subdomain.accept(" Acme-2 ").unwrap(), "acme-2");
        for hostile in [
            "",
            "evil.com#",
            "a.b",
            "a/b",
            "a@evil.com",
            "evil.com:443",
            "-a",
            "a-",
            "a?x=1",
            "a b",
            "ünï",
            &"a".repeat(64),
        ] {
            assert!(subdomain.accept(hostile).is_err(), "{hostile:?}");
        }
    }

    #[test]
    fn an_origin_is_https_on_an_allowed_host_only() {
        let instance = field("instance_url", FieldFormat::Origin, &[".salesforce.com"]);
        assert_eq!(
            instance.accept("https://Acme.my.salesforce.com/").unwrap(),
            "https://acme.my.salesforce.com"
        );
        for hostile in [
            "http://acme.my.salesforce.com",
            "https://evil.com",
            "https://salesforce.com",
            "https://evil.com/.salesforce.com",
            "https://acme.my.salesforce.com.evil.com",
            "https://user@acme.my.salesforce.com",
            "https://acme.my.salesforce.com:8443",
            "https://acme.my.salesforce.com/path",
            "https://acme.my.salesforce.com?x=1",
            "https://evil.com#.salesforce.com",
            "https://1.2.3.4",
            "acme.my.salesforce.com",
        ] {
            assert!(instance.accept(hostile).is_err(), "{hostile:?}");
        }
    }

    #[test]
    fn digits_and_ids_stay_single_path_segments() {
        let realm = field("realmId", FieldFormat::Digits, &[]);
        assert_eq!(realm.accept("9130350").unwrap(), "9130350");
        assert!(realm.accept("12/../3").is_err());
        let account = field("account_id", FieldFormat::Id, &[]);
        assert_eq!(
            account
                .accept("f2a1c3d4-0000-4f9e-9b9b-123456789abc")
                .unwrap(),
            "f2a1c3d4-0000-4f9e-9b9b-123456789abc"
        );
        for hostile in ["..", "a/b", "a%2Fb", "a.b", ""] {
            assert!(account.accept(hostile).is_err(), "{hostile:?}");
        }
    }

    #[test]
    fn templates_are_filled_with_checked_values_only() {
        let fields = [field("custom_subdomain", FieldFormat::Label, &[])];
        let good = json!({ "custom_subdomain": "acme" });
        assert_eq!(
            fill(
                "https://{custom_subdomain}.zendesk.com/api/v2",
                &fields,
                good.as_object().unwrap()
            )
            .unwrap(),
            "https://acme.zendesk.com/api/v2"
        );
        let tampered = json!({ "custom_subdomain": "evil.com/x" });
        assert!(matches!(
            fill(
                "https://{custom_subdomain}.zendesk.com",
                &fields,
                tampered.as_object().unwrap()
            ),
            Err(FieldError::Invalid { .. })
        ));
        assert!(matches!(
            fill(
                "https://{custom_subdomain}.zendesk.com",
                &fields,
                &Map::new()
            ),
            Err(FieldError::Missing { .. })
        ));
        assert_eq!(
            fill("https://x/{tenant}/token", &fields, &Map::new()).unwrap(),
            "https://x/{tenant}/token"
        );
    }

    #[test]
    fn a_selector_picks_an_array_item_by_a_member() {
        let userinfo = json!({ "accounts": [
            { "account_id": "a1", "is_default": false, "base_uri": "https://na2.docusign.net" },
            { "account_id": "a2", "is_default": true, "base_uri": "https://na3.docusign.net" }
        ]});
        assert_eq!(
            select(&userinfo, "/accounts/[is_default=true]/account_id"),
            Some(&json!("a2"))
        );
        assert_eq!(
            select(&userinfo, "/accounts/0/account_id"),
            Some(&json!("a1"))
        );
        assert_eq!(select(&userinfo, "/accounts/[is_default=maybe]/x"), None);
    }
}
