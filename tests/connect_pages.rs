//! The web connect pages through the real binary (`serve`) with an HTTP client playing the
//! browser, against a mock OAuth provider that checks what a real one checks: the client id
//! and secret, the redirect URI, the PKCE verifier against the challenge, and single-use codes.
//! Connect end to end, list, a tool call with the new token, disconnect (revoked, deleted);
//! then the hostile cases, each answered with a clear page and nothing stored.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine;
use common::{modern_meta, stateless_call, Served};
use oauth2::url::Url;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const CLIENT_ID: &str = "cid";
const CLIENT_SECRET: &str = "csecret";

/// What the mock provider remembers: codes it handed out (with their PKCE challenge and
/// redirect URI), tokens it issued, tokens revoked, and code exchanges it answered.
#[derive(Default)]
struct ProviderState {
    codes: HashMap<String, (String, String)>,
    issued: Vec<String>,
    revoked: Vec<String>,
    exchanges: usize,
    deny: bool,
}

#[derive(Clone, Default)]
struct Provider(Arc<Mutex<ProviderState>>);

fn form(request: &Request) -> HashMap<String, String> {
    oauth2::url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect()
}

fn query(url: &Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

/// `GET /authorize`: approves at once (or denies, when told to) by sending the browser back.
struct Authorize(Provider);

impl Respond for Authorize {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let params = query(&request.url);
        let mut state = self.0 .0.lock().unwrap();
        if params.get("client_id").map(String::as_str) != Some(CLIENT_ID)
            || params.get("code_challenge_method").map(String::as_str) != Some("S256")
            || params.get("response_type").map(String::as_str) != Some("code")
        {
            return ResponseTemplate::new(400).set_body_string("bad authorization request");
        }
        let redirect = params["redirect_uri"].clone();
        let mut back = Url::parse(&redirect).unwrap();
        if state.deny {
            back.query_pairs_mut()
                .append_pair("error", "access_denied")
                .append_pair("error_description", "<script>alert(1)</script> said no")
                .append_pair("state", &params["state"]);
        } else {
            let code = format!("code-{}", state.codes.len() + 1);
            state
                .codes
                .insert(code.clone(), (params["code_challenge"].clone(), redirect));
            back.query_pairs_mut()
                .append_pair("code", &code)
                .append_pair("state", &params["state"]);
        }
        ResponseTemplate::new(302).insert_header("location", back.as_str())
    }
}

/// `POST /token`: the code grant, checked as a real provider checks it.
struct Token(Provider);

impl Respond for Token {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body = form(request);
        let mut state = self.0 .0.lock().unwrap();
        state.exchanges += 1;
        let refuse = |why: &str| {
            ResponseTemplate::new(400)
                .set_body_json(json!({ "error": "invalid_grant", "error_description": why }))
        };
        if body.get("grant_type").map(String::as_str) != Some("authorization_code") {
            return refuse("grant_type");
        }
        if body.get("client_id").map(String::as_str) != Some(CLIENT_ID)
            || body.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
        {
            return refuse("client authentication failed");
        }
        let Some((challenge, redirect)) = body.get("code").and_then(|c| state.codes.remove(c))
        else {
            return refuse("unknown or used code");
        };
        if body.get("redirect_uri") != Some(&redirect) {
            return refuse("redirect_uri differs from the authorization request's");
        }
        let verifier = body.get("code_verifier").cloned().unwrap_or_default();
        let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes()));
        if computed != challenge {
            return refuse("PKCE verification failed");
        }
        let n = state.issued.len() + 1;
        let access = format!("tok-{n}");
        state.issued.push(access.clone());
        ResponseTemplate::new(200).set_body_json(json!({
            "access_token": access, "refresh_token": format!("ref-{n}"),
            "token_type": "bearer", "expires_in": 3600, "scope": "repo read:user"
        }))
    }
}

/// `POST /revoke` (RFC 7009).
struct Revoke(Provider);

impl Respond for Revoke {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body = form(request);
        if body.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET) {
            return ResponseTemplate::new(401).set_body_json(json!({ "error": "invalid_client" }));
        }
        let mut state = self.0 .0.lock().unwrap();
        if let Some(token) = body.get("token") {
            state.revoked.push(token.clone());
        }
        ResponseTemplate::new(200)
    }
}

/// `GET /user` of the API: answers only a token the provider issued and nobody revoked
/// (revoking a refresh token ends its access token too).
struct Api(Provider);

impl Respond for Api {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let state = self.0 .0.lock().unwrap();
        let auth = request
            .headers
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let token = auth.strip_prefix("Bearer ").unwrap_or_default();
        let revoked = |token: &str| {
            let refresh = token.replace("tok-", "ref-");
            state.revoked.iter().any(|r| r == token || *r == refresh)
        };
        if token == "pk-live-123" {
            return ResponseTemplate::new(200).set_body_json(json!({ "login": "key-user" }));
        }
        if state.issued.iter().any(|t| t == token) && !revoked(token) {
            ResponseTemplate::new(200).set_body_json(json!({ "login": "alice-gh" }))
        } else {
            ResponseTemplate::new(401).set_body_json(json!({ "message": "Bad credentials" }))
        }
    }
}

struct World {
    provider: Provider,
    mock: MockServer,
    root: tempfile::TempDir,
    served: Served,
    client: reqwest::Client,
}

fn manifest(name: &str, auth: &str, api: &str) -> String {
    format!(
        "name = \"{name}\"\ndescription = \"test\"\nversion = \"1\"\nkind = \"http\"\n\
         base_url = \"{api}\"\n\n[auth]\n{auth}\n\n[[tools]]\nname = \"whoami\"\n\
         description = \"who the account is\"\nmethod = \"GET\"\npath = \"/user\"\n\n\
         [tools.input_schema]\ntype = \"object\"\n"
    )
}

fn key_digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

async fn world(env: &[(&str, &str)]) -> World {
    let provider = Provider::default();
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/authorize"))
        .respond_with(Authorize(provider.clone()))
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(Token(provider.clone()))
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/revoke"))
        .respond_with(Revoke(provider.clone()))
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/user"))
        .respond_with(Api(provider.clone()))
        .mount(&mock)
        .await;
    let root = tempfile::tempdir().unwrap();
    let uri = mock.uri();
    for (name, auth) in [
        (
            "mockhub",
            format!(
                "kind = \"oauth2\"\nscopes = [\"repo\", \"read:user\"]\n\
                 authorize_url = \"{uri}/authorize\"\ntoken_url = \"{uri}/token\"\n\
                 revoke_url = \"{uri}/revoke\""
            ),
        ),
        ("keyhub", "kind = \"api_key\"".to_owned()),
        (
            "fieldhub",
            "kind = \"api_key\"\ninject = \"header:Api-Key\"\n\
             [[auth.key_fields]]\nname = \"base_url\"\nlabel = \"Forum URL\"\n\
             placeholder = \"https://forum.example.com\"\ncheck = \"site_url\"\n\
             [[auth.key_fields]]\nname = \"api_key\"\nlabel = \"API key\"\nsecret = true\n\
             [[auth.key_fields]]\nname = \"username\"\nlabel = \"Username\"\n"
                .to_owned(),
        ),
        (
            "sessionhub",
            format!(
                "kind = \"api_key\"\n\
                 [[auth.key_fields]]\nname = \"handle\"\nlabel = \"Handle\"\n\
                 [[auth.key_fields]]\nname = \"app_password\"\nlabel = \"App password\"\n\
                 secret = true\n\
                 [auth.session]\ncreate_url = \"{uri}/xrpc/com.atproto.server.createSession\"\n\
                 refresh_url = \"{uri}/xrpc/com.atproto.server.refreshSession\"\n\
                 identifier = \"handle\"\npassword = \"app_password\"\n"
            ),
        ),
        (
            "subdomainhub",
            format!(
                "kind = \"oauth2\"\nscopes = [\"repo\"]\n\
                 authorize_url = \"{uri}/authorize?tenant={{custom_subdomain}}\"\n\
                 token_url = \"{uri}/token\"\n\
                 [[auth.fields]]\nname = \"custom_subdomain\"\nlabel = \"Subdomain\"\nformat = \"label\""
            ),
        ),
        (
            "apphub",
            format!("kind = \"client_credentials\"\ntoken_url = \"{uri}/cc-token\""),
        ),
    ] {
        let dir = root.path().join("servers").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("server.toml"), manifest(name, &auth, &uri)).unwrap();
    }
    Mock::given(method("POST"))
        .and(path("/cc-token"))
        // base64("cid:csecret")
        .and(wiremock::matchers::header(
            "authorization",
            "Basic Y2lkOmNzZWNyZXQ=",
        ))
        .and(wiremock::matchers::body_string_contains(
            "grant_type=client_credentials",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "app-token", "token_type": "Bearer", "expires_in": 32400
        })))
        .mount(&mock)
        .await;
    for name in ["mockhub", "subdomainhub", "apphub"] {
        let app = root.path().join("local_auth/oauth_configs").join(name);
        std::fs::create_dir_all(&app).unwrap();
        std::fs::write(
            app.join("oauth.json"),
            json!({ "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                    "redirect_uri": "http://localhost:8080/" })
            .to_string(),
        )
        .unwrap();
    }
    let config = root.path().join("gumcp.toml");
    std::fs::write(
        &config,
        format!(
            "[auth]\nlocal_dir = \"{}\"\n[access]\nmode = \"api_keys\"\napi_keys = [\
             {{ user_id = \"alice\", sha256 = \"{}\" }}, {{ user_id = \"bob\", sha256 = \"{}\" }}]\n",
            root.path().join("local_auth").display(),
            key_digest("alice-key"),
            key_digest("bob-key"),
        ),
    )
    .unwrap();
    let servers = root.path().join("servers");
    let mut env: Vec<(&str, &str)> = env.to_vec();
    let servers = servers.to_str().unwrap().to_owned();
    env.push(("GUMCP__SERVERS__DIR", &servers));
    let served = common::serve(Some(&config), &env).await;
    gumcp_actors::upstream::install_crypto_provider();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    World {
        provider,
        mock,
        root,
        served,
        client,
    }
}

/// One response as the test saw it.
struct Seen {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    fn location(&self) -> Option<Url> {
        self.header("location").map(|l| Url::parse(l).unwrap())
    }

    /// The `value` of the first hidden input named `name`.
    fn field(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker)? + marker.len();
        let end = self.body[start..].find('"')? + start;
        Some(self.body[start..end].replace("&amp;", "&"))
    }

    /// The page's `/connect?t=…` link back to the list.
    fn list_link(&self) -> Option<String> {
        let start = self.body.find("href=\"/connect?t=")? + "href=\"".len();
        let end = self.body[start..].find('"')? + start;
        Some(self.body[start..end].to_owned())
    }
}

impl World {
    fn base(&self) -> &str {
        &self.served.url
    }

    async fn seen(&self, builder: reqwest::RequestBuilder) -> Seen {
        let response = builder.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap();
        if headers.contains_key("content-type")
            && headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        {
            assert_eq!(headers["cache-control"], "no-store", "{body}");
            let csp = headers["content-security-policy"].to_str().unwrap();
            assert!(csp.starts_with("default-src 'none';"), "{csp}");
            assert!(!csp.contains("unsafe-inline") && !csp.contains("script-src"));
            assert_eq!(headers["referrer-policy"], "same-origin");
            assert!(!body.contains("<script"), "{body}");
        }
        Seen {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, url: &str, cookie: Option<&str>) -> Seen {
        let url = if url.starts_with('/') {
            format!("{}{url}", self.base())
        } else {
            url.to_owned()
        };
        let mut request = self.client.get(url);
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        self.seen(request).await
    }

    async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Seen {
        let request = self
            .client
            .post(format!("{}{path}", self.base()))
            .form(fields);
        self.seen(request).await
    }

    /// A link to the list for the user of `key`, as `POST /connect/link` hands it out.
    async fn link(&self, key: &str) -> String {
        let answer: Value = self
            .client
            .post(format!("{}/connect/link", self.base()))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["url"].as_str().unwrap().to_owned()
    }

    /// Starts a sign-in from `link` (a list link): the provider's URL and the browser cookie.
    async fn start_sign_in(&self, link: &str, server: &str) -> (Url, String) {
        let token = link.split_once("?t=").unwrap().1;
        let started = self
            .get(&format!("/connect/{server}?t={token}"), None)
            .await;
        assert_eq!(started.status, 303, "{}", started.body);
        let cookie = started
            .header("set-cookie")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        (started.location().unwrap(), cookie)
    }

    /// The provider's answer to the authorization URL: where it sends the browser back.
    async fn authorize(&self, provider_url: &Url) -> Url {
        let approved = self.get(provider_url.as_str(), None).await;
        assert_eq!(approved.status, 302, "{}", approved.body);
        approved.location().unwrap()
    }

    async fn whoami(&self, key: &str) -> Value {
        let url = format!("{}/mockhub/mcp", self.base());
        let response = stateless_call(&self.client, &url, "whoami", json!({}), modern_meta())
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        let reply: Value = response.json().await.unwrap();
        reply["result"].clone()
    }

    fn credentials_file(&self, server: &str, user: &str) -> PathBuf {
        self.root
            .path()
            .join("local_auth/credentials")
            .join(server)
            .join(format!("{user}_credentials.json"))
    }

    fn nothing_stored(&self) -> bool {
        !self.root.path().join("local_auth/credentials").exists()
            || walk(&self.root.path().join("local_auth/credentials")).is_empty()
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn an_account_is_connected_used_and_disconnected_through_the_pages() {
    let w = world(&[]).await;
    let before = w.whoami("alice-key").await;
    assert_eq!(before["isError"], true, "{before}");
    assert!(text(&before).contains("no mockhub account"), "{before}");

    let link = w.link("alice-key").await;
    assert!(
        link.starts_with(&format!("{}/connect?t=", w.base())),
        "{link}"
    );
    let list = w.get(&link, None).await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list
        .body
        .contains("Accounts of user <strong>alice</strong>"));
    assert!(list.body.contains("Not connected"), "{}", list.body);

    let (provider_url, cookie) = w.start_sign_in(&link, "mockhub").await;
    assert!(provider_url
        .as_str()
        .starts_with(&format!("{}/authorize?", w.mock.uri())));
    let params = query(&provider_url);
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["scope"], "repo read:user");
    assert_eq!(
        params["redirect_uri"],
        format!("{}/connect/callback", w.base())
    );
    assert!(cookie.starts_with("gumcp_connect="));
    let back = w.authorize(&provider_url).await;
    let done = w.get(back.as_str(), Some(&cookie)).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done
        .body
        .contains("Connected <strong>mockhub</strong> for user <strong>alice</strong>"));
    assert!(done.body.contains("repo read:user"), "{}", done.body);
    assert!(!done.body.contains("tok-1") && !done.body.contains("ref-1"));

    let saved: Value =
        serde_json::from_slice(&std::fs::read(w.credentials_file("mockhub", "alice")).unwrap())
            .unwrap();
    assert_eq!(saved["access_token"], "tok-1");
    assert_eq!(saved["refresh_token"], "ref-1");
    let list = w.get(&done.list_link().unwrap(), None).await;
    assert!(
        list.body.contains("class=\"connected\">Connected"),
        "{}",
        list.body
    );

    let after = w.whoami("alice-key").await;
    assert_eq!(after["isError"], false, "{after}");
    assert!(text(&after).contains("alice-gh"), "{after}");
    // Bob has no account of his own, whatever alice connected.
    assert_eq!(w.whoami("bob-key").await["isError"], true);

    let token = list.field("t").unwrap();
    let csrf = list.field("csrf").unwrap();
    let gone = w
        .post_form(
            "/connect/mockhub/disconnect",
            &[("t", &token), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(gone.status, 200, "{}", gone.body);
    assert!(gone.body.contains("told to revoke"), "{}", gone.body);
    assert_eq!(w.provider.0.lock().unwrap().revoked, vec!["ref-1"]);
    assert!(!w.credentials_file("mockhub", "alice").exists());
    let again = w.whoami("alice-key").await;
    assert_eq!(again["isError"], true, "{again}");
    assert!(text(&again).contains("no mockhub account"), "{again}");

    // An API-key server: the form, stored as the `auth` command stores it.
    let form = w.get(&format!("/connect/keyhub?t={token}"), None).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("type=\"password\" name=\"api_key\""));
    let csrf = form.field("csrf").unwrap();
    let saved = w
        .post_form(
            "/connect/keyhub",
            &[("t", &token), ("csrf", &csrf), ("api_key", "pk-live-123")],
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert!(!saved.body.contains("pk-live-123"));
    let stored: Value =
        serde_json::from_slice(&std::fs::read(w.credentials_file("keyhub", "alice")).unwrap())
            .unwrap();
    assert_eq!(stored, json!({ "api_key": "pk-live-123" }));
    let logs = w.served.stop().await;
    for secret in ["tok-1", "ref-1", "pk-live-123", CLIENT_SECRET] {
        assert!(!logs.contains(secret), "{secret} in {logs}");
    }
}

#[tokio::test]
async fn a_replayed_or_foreign_state_finishes_nothing() {
    let w = world(&[]).await;
    let alice = w.link("alice-key").await;
    let bob = w.link("bob-key").await;
    let (alice_url, alice_cookie) = w.start_sign_in(&alice, "mockhub").await;
    let (_, bob_cookie) = w.start_sign_in(&bob, "mockhub").await;
    let alice_back = w.authorize(&alice_url).await;

    // Alice's state, in Bob's browser: refused, and left for Alice.
    let foreign = w.get(alice_back.as_str(), Some(&bob_cookie)).await;
    assert_eq!(foreign.status, 400);
    assert!(foreign
        .body
        .contains("started in another browser or by another user"));
    let no_cookie = w.get(alice_back.as_str(), None).await;
    assert_eq!(no_cookie.status, 400);
    assert!(w.nothing_stored());
    assert_eq!(w.provider.0.lock().unwrap().exchanges, 0);

    let done = w.get(alice_back.as_str(), Some(&alice_cookie)).await;
    assert_eq!(done.status, 200, "{}", done.body);
    std::fs::remove_file(w.credentials_file("mockhub", "alice")).unwrap();

    // The same answer again: the state was used up.
    let replayed = w.get(alice_back.as_str(), Some(&alice_cookie)).await;
    assert_eq!(replayed.status, 400);
    assert!(replayed.body.contains("already finished, it expired"));
    assert!(w.nothing_stored());
    assert_eq!(w.provider.0.lock().unwrap().exchanges, 1);

    // A state nobody handed out.
    let forged = w
        .get(
            "/connect/callback?code=code-1&state=forged",
            Some(&alice_cookie),
        )
        .await;
    assert_eq!(forged.status, 400);
    assert!(w.nothing_stored());
}

#[tokio::test]
async fn a_key_of_several_fields_is_asked_for_field_by_field() {
    let w = world(&[]).await;
    let link = w.link("alice-key").await;
    let token = link.split_once("?t=").unwrap().1.to_owned();
    let form = w.get(&format!("/connect/fieldhub?t={token}"), None).await;
    assert_eq!(form.status, 200, "{}", form.body);
    for input in [
        "type=\"text\" name=\"base_url\" placeholder=\"https://forum.example.com\"",
        "type=\"password\" name=\"api_key\"",
        "type=\"text\" name=\"username\"",
    ] {
        assert!(form.body.contains(input), "{input}: {}", form.body);
    }
    let csrf = form.field("csrf").unwrap();
    let send = |url: &'static str| {
        [
            ("t", token.clone()),
            ("csrf", csrf.clone()),
            ("base_url", url.to_owned()),
            ("api_key", "fk-123".to_owned()),
            ("username", "system".to_owned()),
        ]
    };
    for (url, why) in [
        (
            "http://forum.example.com",
            "Forum URL: must start with https://",
        ),
        (
            "https://forum.example.com/?x=1",
            "Forum URL: must not carry a query",
        ),
        (
            "https://me:pw@forum.example.com",
            "Forum URL: must not carry a user name",
        ),
    ] {
        let fields = send(url);
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let refused = w.post_form("/connect/fieldhub", &fields).await;
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert!(refused.body.contains(why), "{}", refused.body);
        assert!(!refused.body.contains("fk-123"));
    }
    assert!(!w.credentials_file("fieldhub", "alice").exists());
    let mut fields = send("https://forum.example.com/");
    fields[4].1 = String::new();
    let fields_ref: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = w.post_form("/connect/fieldhub", &fields_ref).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body.contains("Username was empty"),
        "{}",
        refused.body
    );

    let fields = send("https://forum.example.com/");
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let saved = w.post_form("/connect/fieldhub", &fields).await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    let stored: Value =
        serde_json::from_slice(&std::fs::read(w.credentials_file("fieldhub", "alice")).unwrap())
            .unwrap();
    assert_eq!(
        stored,
        json!({ "base_url": "https://forum.example.com", "api_key": "fk-123", "username": "system" })
    );
    let list = w.get(&link, None).await;
    assert!(list.body.contains("fieldhub"), "{}", list.body);
}

#[tokio::test]
async fn a_password_session_is_made_from_the_form_and_the_password_not_kept() {
    let w = world(&[]).await;
    Mock::given(method("POST"))
        .and(path("/xrpc/com.atproto.server.createSession"))
        .and(wiremock::matchers::body_json(
            json!({ "identifier": "ada.example", "password": "good-app-pass" }),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "accessJwt": "a.eyJleHAiOjQxMDI0NDQ4MDB9.s", "refreshJwt": "r1",
            "handle": "ada.example", "did": "did:plc:ada"
        })))
        .expect(1)
        .mount(&w.mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/xrpc/com.atproto.server.createSession"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": "AuthenticationRequired", "message": "Invalid identifier or password"
        })))
        .mount(&w.mock)
        .await;
    let link = w.link("alice-key").await;
    let token = link.split_once("?t=").unwrap().1.to_owned();
    let form = w.get(&format!("/connect/sessionhub?t={token}"), None).await;
    assert!(
        form.body
            .contains("type=\"password\" name=\"app_password\""),
        "{}",
        form.body
    );
    let csrf = form.field("csrf").unwrap();
    let send = |password: &'static str| {
        [
            ("t", token.clone()),
            ("csrf", csrf.clone()),
            ("handle", "ada.example".to_owned()),
            ("app_password", password.to_owned()),
        ]
    };
    let wrong = send("bad-app-pass");
    let wrong: Vec<(&str, &str)> = wrong.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = w.post_form("/connect/sessionhub", &wrong).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body.contains("Invalid identifier or password"),
        "{}",
        refused.body
    );
    assert!(!w.credentials_file("sessionhub", "alice").exists());
    let right = send("good-app-pass");
    let right: Vec<(&str, &str)> = right.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let saved = w.post_form("/connect/sessionhub", &right).await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    let text = std::fs::read_to_string(w.credentials_file("sessionhub", "alice")).unwrap();
    assert!(!text.contains("app-pass"), "{text}");
    let stored: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(stored["refresh_token"], "r1");
    assert_eq!(stored["expires_at"], 4_102_444_800_i64);
    assert_eq!(stored["did"], "did:plc:ada");
}

#[tokio::test]
async fn forms_without_their_token_change_nothing() {
    let w = world(&[]).await;
    let link = w.link("alice-key").await;
    let token = link.split_once("?t=").unwrap().1.to_owned();
    let (provider_url, cookie) = w.start_sign_in(&link, "mockhub").await;
    let back = w.authorize(&provider_url).await;
    assert_eq!(w.get(back.as_str(), Some(&cookie)).await.status, 200);
    let file = w.credentials_file("mockhub", "alice");
    let bob_link = w.link("bob-key").await;
    let (provider_url, bob_cookie) = w.start_sign_in(&bob_link, "mockhub").await;
    let back = w.authorize(&provider_url).await;
    assert_eq!(w.get(back.as_str(), Some(&bob_cookie)).await.status, 200);
    let bob_list = w.get(&bob_link, None).await;
    let bob_csrf = bob_list.field("csrf").unwrap();
    let form = w.get(&format!("/connect/keyhub?t={token}"), None).await;
    let keyhub_csrf = form.field("csrf").unwrap();

    for fields in [
        vec![("t", token.as_str())],
        vec![("t", token.as_str()), ("csrf", "")],
        vec![("t", token.as_str()), ("csrf", "made-up")],
        // Bob's token, and the API-key form's: made for another user, another action.
        vec![("t", token.as_str()), ("csrf", bob_csrf.as_str())],
        vec![("t", token.as_str()), ("csrf", keyhub_csrf.as_str())],
    ] {
        let refused = w.post_form("/connect/mockhub/disconnect", &fields).await;
        assert_eq!(refused.status, 403, "{fields:?}: {}", refused.body);
        assert!(
            refused.body.contains("form is out of date"),
            "{}",
            refused.body
        );
        assert!(file.exists());
    }
    let refused = w
        .post_form(
            "/connect/keyhub",
            &[("t", &token), ("api_key", "pk-live-123")],
        )
        .await;
    assert_eq!(refused.status, 403);
    assert!(!w.credentials_file("keyhub", "alice").exists());
    assert!(w.provider.0.lock().unwrap().revoked.is_empty());
}

#[tokio::test]
async fn an_expired_link_or_sign_in_is_refused() {
    let w = world(&[("GUMCP__HTTP__CONNECT_LINK_SECS", "1")]).await;
    let link = w.link("alice-key").await;
    let (provider_url, cookie) = w.start_sign_in(&link, "mockhub").await;
    let back = w.authorize(&provider_url).await;
    // Past the one second both were given (the clock is the only thing waited for).
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let list = w.get(&link, None).await;
    assert_eq!(list.status, 403);
    assert!(
        list.body.contains("this link is not valid"),
        "{}",
        list.body
    );
    let late = w.get(back.as_str(), Some(&cookie)).await;
    assert_eq!(late.status, 400);
    assert!(late.body.contains("it expired"), "{}", late.body);
    assert!(w.nothing_stored());
    assert_eq!(w.provider.0.lock().unwrap().exchanges, 0);
}

#[tokio::test]
async fn no_parameter_can_send_the_browser_elsewhere() {
    let w = world(&[]).await;
    let link = w.link("alice-key").await;
    let token = link.split_once("?t=").unwrap().1.to_owned();
    let evil = "https://evil.example/steal";
    let encoded: String = oauth2::url::form_urlencoded::byte_serialize(evil.as_bytes()).collect();
    for extra in [
        "redirect_uri",
        "redirect",
        "next",
        "return_to",
        "returnTo",
        "continue",
        "url",
        "callback",
    ] {
        let started = w
            .get(
                &format!("/connect/mockhub?t={token}&{extra}={encoded}"),
                None,
            )
            .await;
        assert_eq!(started.status, 303);
        let to = started.location().unwrap();
        assert!(to
            .as_str()
            .starts_with(&format!("{}/authorize?", w.mock.uri())));
        assert_eq!(
            query(&to)["redirect_uri"],
            format!("{}/connect/callback", w.base())
        );
        assert!(!to.as_str().contains("evil.example"), "{to}");
    }
    for path in [
        format!("/connect?t={token}&next={encoded}"),
        format!("/connect?t={encoded}"),
        format!("/connect/{encoded}?t={token}"),
        "/connect//evil.example".to_owned(),
        format!("/connect/callback?state={encoded}&code=x&redirect_uri={encoded}"),
        format!("/connect/callback?error=x&state=s&next={encoded}"),
    ] {
        let seen = w.get(&path, None).await;
        assert!(seen.header("location").is_none(), "{path}: {}", seen.status);
        assert!(
            seen.status == 200 || (400..500).contains(&seen.status),
            "{path}: {}",
            seen.status
        );
        assert!(!seen.body.contains("href=\"https://evil"), "{}", seen.body);
    }
    let (provider_url, cookie) = w.start_sign_in(&link, "mockhub").await;
    let back = w.authorize(&provider_url).await;
    let done = w
        .get(
            &format!("{back}&redirect_uri={encoded}&next={encoded}"),
            Some(&cookie),
        )
        .await;
    assert_eq!(done.status, 200);
    assert!(done.header("location").is_none());
    assert!(!done.body.contains("evil.example"));
    // The forms: extra fields naming an address change nothing about where the answer goes.
    let list = w.get(&done.list_link().unwrap(), None).await;
    let csrf = list.field("csrf").unwrap();
    let gone = w
        .post_form(
            "/connect/mockhub/disconnect",
            &[
                ("t", &token),
                ("csrf", &csrf),
                ("next", evil),
                ("redirect_uri", evil),
            ],
        )
        .await;
    assert_eq!(gone.status, 200, "{}", gone.body);
    assert!(gone.header("location").is_none());
    assert!(!gone.body.contains("evil.example"));
}

#[tokio::test]
async fn a_provider_error_is_shown_and_stores_nothing() {
    let w = world(&[]).await;
    w.provider.0.lock().unwrap().deny = true;
    let link = w.link("alice-key").await;
    let (provider_url, cookie) = w.start_sign_in(&link, "mockhub").await;
    let back = w.authorize(&provider_url).await;
    let denied = w.get(back.as_str(), Some(&cookie)).await;
    assert_eq!(denied.status, 400);
    assert!(denied.body.contains("access_denied"), "{}", denied.body);
    assert!(denied.body.contains("&lt;script&gt;"), "{}", denied.body);
    assert!(w.nothing_stored());

    // The provider refuses the code itself (unknown code): a clear page, nothing stored.
    w.provider.0.lock().unwrap().deny = false;
    let (provider_url, cookie) = w.start_sign_in(&link, "mockhub").await;
    let state = query(&provider_url)["state"].clone();
    let refused = w
        .get(
            &format!("/connect/callback?code=not-issued&state={state}"),
            Some(&cookie),
        )
        .await;
    assert_eq!(refused.status, 502, "{}", refused.body);
    assert!(refused.body.contains("did not accept the sign-in"));
    assert!(refused.body.contains("invalid_grant"), "{}", refused.body);
    assert!(w.nothing_stored());

    // Stored credentials that expired with no way to refresh them: "needs reconnecting".
    let bob = w.credentials_file("mockhub", "bob");
    std::fs::create_dir_all(bob.parent().unwrap()).unwrap();
    std::fs::write(
        &bob,
        json!({ "access_token": "old", "expires_at": 1_000_000_000 }).to_string(),
    )
    .unwrap();
    let list = w.get(&w.link("bob-key").await, None).await;
    assert!(
        list.body
            .contains("class=\"needs-reconnect\">Needs reconnecting"),
        "{}",
        list.body
    );
    assert!(list.body.contains(">Reconnect</a>") && list.body.contains(">Disconnect</button>"));

    // No key, a wrong key: not signed in, with the Bearer challenge.
    let anonymous = w.get("/connect", None).await;
    assert_eq!(anonymous.status, 401);
    assert!(anonymous.header("www-authenticate").is_some());
    let wrong = w
        .seen(
            w.client
                .get(format!("{}/connect", w.base()))
                .bearer_auth("guess"),
        )
        .await;
    assert_eq!(wrong.status, 401);
}

/// The JSON-RPC message of a Streamable HTTP answer, sent as JSON or as one SSE event.
fn message_of(body: &str) -> Value {
    if let Ok(value) = serde_json::from_str(body) {
        return value;
    }
    let data = body
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim)
        .find(|data| data.contains("\"id\""))
        .unwrap_or_else(|| panic!("no message in {body}"));
    serde_json::from_str(data).unwrap()
}

impl World {
    /// A Streamable HTTP session of `version` for alice with `capabilities`: the `tools/call`
    /// of whoami's answer.
    async fn session_call(&self, version: &str, capabilities: Value) -> Value {
        let url = format!("{}/mockhub/mcp", self.base());
        let post = |session: Option<&str>, body: Value| {
            let mut request = self
                .client
                .post(&url)
                .bearer_auth("alice-key")
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .body(body.to_string());
            if let Some(session) = session {
                request = request
                    .header("mcp-session-id", session)
                    .header("mcp-protocol-version", version);
            }
            request.send()
        };
        let initialized = post(
            None,
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": version, "capabilities": capabilities,
                "clientInfo": {"name": "tests", "version": "1"}}}),
        )
        .await
        .unwrap();
        let session = initialized.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let _ = initialized.text().await;
        post(
            Some(&session),
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        )
        .await
        .unwrap();
        let called = post(
            Some(&session),
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                   "params": {"name": "whoami", "arguments": {}}}),
        )
        .await
        .unwrap();
        message_of(&called.text().await.unwrap())
    }

    /// Connects alice's mockhub account by following `url` (a link an MCP answer carried)
    /// through the mock provider, as a browser would.
    async fn follow_connect_link(&self, url: &str) {
        assert!(
            url.starts_with(&format!("{}/connect/mockhub?t=", self.base())),
            "{url}"
        );
        let started = self.get(url, None).await;
        assert_eq!(started.status, 303, "{}", started.body);
        let cookie = started
            .header("set-cookie")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let back = self.authorize(&started.location().unwrap()).await;
        let done = self.get(back.as_str(), Some(&cookie)).await;
        assert_eq!(done.status, 200, "{}", done.body);
    }
}

/// The link in a tool error's text.
fn link_in(text: &str) -> String {
    let start = text
        .find("http://")
        .unwrap_or_else(|| panic!("no link in {text}"));
    text[start..].split_whitespace().next().unwrap().to_owned()
}

#[tokio::test]
async fn a_tool_error_carries_the_link_for_clients_without_url_elicitation() {
    let w = world(&[]).await;
    // 2026-07-28 without the capability, and 2025-06-18 (no URL elicitation at all).
    let modern = w.whoami("alice-key").await;
    assert_eq!(modern["isError"], true, "{modern}");
    let text_modern = text(&modern).to_owned();
    assert!(
        text_modern.contains("connect one at http://"),
        "{text_modern}"
    );
    let older = w
        .session_call("2025-06-18", json!({"elicitation": {}}))
        .await;
    assert_eq!(older["result"]["isError"], true, "{older}");
    let link = link_in(text(&older["result"]));
    w.follow_connect_link(&link).await;
    let after = w.whoami("alice-key").await;
    assert_eq!(after["isError"], false, "{after}");
    // The link is for mockhub only: it opens no other server's page.
    let token = link.split_once("?t=").unwrap().1;
    let keyhub = w.get(&format!("/connect/keyhub?t={token}"), None).await;
    assert_eq!(keyhub.status, 404);
}

#[tokio::test]
async fn a_2025_11_25_client_without_url_elicitation_gets_url_elicitation_required() {
    let w = world(&[]).await;
    let answer = w
        .session_call("2025-11-25", json!({"elicitation": {"form": {}}}))
        .await;
    assert_eq!(answer["error"]["code"], -32042, "{answer}");
    let elicitation = &answer["error"]["data"]["elicitations"][0];
    assert_eq!(elicitation["mode"], "url");
    assert!(elicitation["elicitationId"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));
    assert!(elicitation["message"].as_str().unwrap().contains("mockhub"));
    w.follow_connect_link(elicitation["url"].as_str().unwrap())
        .await;
    let retried = w
        .session_call("2025-11-25", json!({"elicitation": {"form": {}}}))
        .await;
    assert_eq!(retried["result"]["isError"], false, "{retried}");
}

#[tokio::test]
async fn a_2026_07_28_request_gets_an_input_required_result_with_the_url_elicitation() {
    let w = world(&[]).await;
    let url = format!("{}/mockhub/mcp", w.base());
    let mut meta = modern_meta();
    meta["io.modelcontextprotocol/clientCapabilities"] = json!({"elicitation": {"url": {}}});
    let call = |arguments: Value, input_responses: Option<Value>| {
        let mut params = json!({ "name": "whoami", "arguments": arguments, "_meta": meta });
        if let Some(responses) = input_responses {
            params["inputResponses"] = responses;
        }
        w.client
            .post(&url)
            .bearer_auth("alice-key")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "whoami")
            .body(
                json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params})
                    .to_string(),
            )
            .send()
    };
    let first: Value = call(json!({}), None).await.unwrap().json().await.unwrap();
    let result = &first["result"];
    assert_eq!(result["resultType"], "input_required", "{first}");
    let request = &result["inputRequests"]["connect_account"];
    assert_eq!(request["method"], "elicitation/create");
    assert_eq!(request["params"]["mode"], "url");
    assert!(request["params"].get("elicitationId").is_none());
    // Retried before connecting: asked again.
    let accepted = json!({"connect_account": {"action": "accept"}});
    let again: Value = call(json!({}), Some(accepted.clone()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["result"]["resultType"], "input_required", "{again}");
    // Declined: not asked again, the tool error keeps the link.
    let declined: Value = call(
        json!({}),
        Some(json!({"connect_account": {"action": "decline"}})),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(declined["result"]["isError"], true, "{declined}");
    assert!(text(&declined["result"]).contains("connect one at http://"));
    w.follow_connect_link(request["params"]["url"].as_str().unwrap())
        .await;
    let done: Value = call(json!({}), Some(accepted))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(done["result"]["isError"], false, "{done}");
    assert!(text(&done["result"]).contains("alice-gh"), "{done}");
}

#[tokio::test]
async fn the_pages_are_off_with_a_read_only_store() {
    let w = world(&[
        ("GUMCP__AUTH__BACKEND", "remote"),
        ("GUMCP__AUTH__REMOTE_BASE_URL", "http://127.0.0.1:9/"),
    ])
    .await;
    let off = w
        .seen(
            w.client
                .post(format!("{}/connect/link", w.base()))
                .bearer_auth("alice-key"),
        )
        .await;
    assert_eq!(off.status, 404, "{}", off.body);
    assert!(off.body.contains("Connect pages are off"), "{}", off.body);
    let call = w.whoami("alice-key").await;
    assert_eq!(call["isError"], true, "{call}");
    assert!(!text(&call).contains("/connect"), "{call}");
}

/// `cluster.shared_keys` of the clustered nodes below.
const SHARED_KEYS: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// The settings of a cluster node called `id` on `redis`.
fn clustered<'a>(redis: &'a str, id: &'a str) -> [(&'a str, &'a str); 4] {
    [
        ("GUMCP__CLUSTER__REDIS_URL", redis),
        ("GUMCP__CLUSTER__NODE_ID", id),
        ("GUMCP__CLUSTER__REDIS_TIMEOUT_MS", "300"),
        ("GUMCP__CLUSTER__SHARED_KEYS", SHARED_KEYS),
    ]
}

/// Behind a load balancer the provider sends the browser back to whichever node: the sign-in
/// (kept encrypted in Redis, database 8 of the machines' Redis) finishes there, in its own
/// browser only, and once.
#[tokio::test]
async fn in_a_cluster_a_sign_in_started_on_one_node_finishes_on_another_once() {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let redis = "redis://127.0.0.1:6379/8";
    let (first, second) = (format!("a-{}", &run[..8]), format!("b-{}", &run[..8]));
    let w = world(&clustered(redis, &first)).await;
    let servers = w.root.path().join("servers");
    let mut env = clustered(redis, &second).to_vec();
    env.push(("GUMCP__SERVERS__DIR", servers.to_str().unwrap()));
    let other = common::serve(Some(&w.root.path().join("gumcp.toml")), &env).await;

    let link = w.link("alice-key").await;
    let (provider_url, cookie) = w.start_sign_in(&link, "mockhub").await;
    let back = w.authorize(&provider_url).await;
    let elsewhere = format!(
        "{}{}?{}",
        other.url,
        back.path(),
        back.query().unwrap_or_default()
    );

    let foreign_cookie = format!("gumcp_connect={}", "0".repeat(32));
    let foreign = w.get(&elsewhere, Some(&foreign_cookie)).await;
    assert_eq!(foreign.status, 400, "{}", foreign.body);
    assert!(foreign.body.contains("started in another browser"));
    assert!(w.nothing_stored());

    let done = w.get(&elsewhere, Some(&cookie)).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done
        .body
        .contains("Connected <strong>mockhub</strong> for user <strong>alice</strong>"));
    assert!(w.credentials_file("mockhub", "alice").exists());
    assert_eq!(w.provider.0.lock().unwrap().exchanges, 1);

    let replayed = w.get(back.as_str(), Some(&cookie)).await;
    assert_eq!(replayed.status, 400, "{}", replayed.body);
    assert!(replayed.body.contains("already finished, it expired"));
    assert_eq!(w.provider.0.lock().unwrap().exchanges, 1);

    for logs in [other.stop().await, w.served.stop().await] {
        for secret in ["tok-1", "ref-1", CLIENT_SECRET] {
            assert!(!logs.contains(secret), "{secret} in {logs}");
        }
    }
}

/// A clustered node whose Redis does not answer cannot keep a sign-in: it says to retry
/// rather than starting one that no node could finish.
#[tokio::test]
async fn in_a_cluster_without_redis_a_sign_in_is_refused_with_retry_after() {
    let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let redis = format!("redis://127.0.0.1:{}", gone.local_addr().unwrap().port());
    drop(gone);
    let w = world(&clustered(&redis, "alone")).await;
    let link = w.link("alice-key").await;
    let token = link.split_once("?t=").unwrap().1;
    let refused = w.get(&format!("/connect/mockhub?t={token}"), None).await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert!(
        refused.body.contains("nothing was stored"),
        "{}",
        refused.body
    );
    assert_eq!(w.provider.0.lock().unwrap().exchanges, 0);
}

/// A server with `[[auth.fields]]` asks for them in a form before the sign-in; a value that
/// could name another host is refused there, and a good one fills the provider's URL and is
/// stored with the tokens. A client-credentials server connects with a button (its form
/// token checked): the app token is asked for and saved.
#[tokio::test]
async fn fields_are_asked_before_the_sign_in_and_an_app_token_is_one_button_away() {
    let w = world(&[]).await;
    let link = w.link("alice-key").await;
    let token = link.split_once("?t=").unwrap().1.to_owned();
    let form = w
        .get(&format!("/connect/subdomainhub?t={token}"), None)
        .await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(
        form.body.contains("name=\"custom_subdomain\""),
        "{}",
        form.body
    );
    assert!(form.body.contains("Subdomain"), "{}", form.body);
    for hostile in ["evil.com%2F", "a%40evil.com", "x.y"] {
        let refused = w
            .get(
                &format!("/connect/subdomainhub?t={token}&custom_subdomain={hostile}"),
                None,
            )
            .await;
        assert_eq!(refused.status, 400, "{hostile}: {}", refused.body);
        assert!(
            refused.body.contains("must be one name"),
            "{}",
            refused.body
        );
    }
    let started = w
        .get(
            &format!("/connect/subdomainhub?t={token}&custom_subdomain=Acme"),
            None,
        )
        .await;
    assert_eq!(started.status, 303, "{}", started.body);
    let provider_url = started.location().unwrap();
    assert_eq!(query(&provider_url)["tenant"], "acme");
    let cookie = started
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let back = w.authorize(&provider_url).await;
    let done = w.get(back.as_str(), Some(&cookie)).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let saved: Value = serde_json::from_slice(
        &std::fs::read(w.credentials_file("subdomainhub", "alice")).unwrap(),
    )
    .unwrap();
    assert_eq!(saved["custom_subdomain"], "acme");
    assert_eq!(saved["access_token"], "tok-1");

    let page = w.get(&format!("/connect/apphub?t={token}"), None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let refused = w
        .post_form("/connect/apphub", &[("t", &token), ("csrf", "made-up")])
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(!w.credentials_file("apphub", "alice").exists());
    let csrf = page.field("csrf").unwrap();
    let connected = w
        .post_form("/connect/apphub", &[("t", &token), ("csrf", &csrf)])
        .await;
    assert_eq!(connected.status, 200, "{}", connected.body);
    assert!(!connected.body.contains("app-token"));
    let saved: Value =
        serde_json::from_slice(&std::fs::read(w.credentials_file("apphub", "alice")).unwrap())
            .unwrap();
    assert_eq!(saved["access_token"], "app-token");
}
