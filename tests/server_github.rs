//! github against a mock of the GitHub REST API: every one of the twenty-four tools sends the
//! method, path (file paths and branch names keep their slashes), query, body and the headers
//! GitHub expects (`Accept: application/vnd.github+json` once, `X-GitHub-Api-Version`, the
//! bearer token); lists follow `Link` pages up to `max_limit`; failures say what GitHub said.

mod common;

use base64::Engine;
use common::{modern_meta, shipped_server, StdioClient};
use serde_json::{json, Value};
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const TOKEN: &str = "gho_16C7e42F292c6912E7710c838347Ae178B4a";
const SHA: &str = "7638417db6d59f3c431d3e1f261cc637155684cd";

/// guMCP's tools, in its order.
const TOOLS: [&str; 24] = [
    "create_repository",
    "search_repositories",
    "list_public_user_repositories",
    "list_organization_repositories",
    "get_contents",
    "list_repository_languages",
    "add_file_to_repository",
    "list_commits",
    "get_commit",
    "star_repository",
    "list_stargazers",
    "get_stargazers_count",
    "list_starred_repos_by_user",
    "list_issues",
    "get_issue",
    "create_issue",
    "update_issue",
    "add_comment_to_issue",
    "list_branches",
    "create_branch",
    "list_pull_requests",
    "get_pull_request",
    "create_pull_request",
    "fork_repository",
];

fn github(root: &std::path::Path, upstream: &MockServer) -> StdioClient {
    shipped_server(
        root,
        "github",
        json!({ "access_token": TOKEN, "token_type": "bearer", "scope": "repo,read:user,read:org" }),
        &upstream.uri(),
    )
}

/// A request as GitHub checks it: the verb, the (encoded) path, the token, and the media type
/// and API version headers, each exactly once.
fn gh(verb: &str, route: &str) -> wiremock::MockBuilder {
    Mock::given(method(verb))
        .and(path(route))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("accept", "application/vnd.github+json"))
        .and(header("x-github-api-version", "2022-11-28"))
}

fn answer(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

fn created(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(body)
}

async fn call_raw(client: &mut StdioClient, id: i64, tool: &str, arguments: Value) -> Value {
    client
        .request(
            id,
            "tools/call",
            json!({ "name": tool, "arguments": arguments, "_meta": modern_meta() }),
        )
        .await["result"]
        .clone()
}

async fn call(client: &mut StdioClient, id: i64, tool: &str, arguments: Value) -> Value {
    let result = call_raw(client, id, tool, arguments).await;
    assert_eq!(result["isError"], false, "{tool}: {result}");
    result
}

async fn failing(client: &mut StdioClient, id: i64, tool: &str, arguments: Value) -> String {
    let result = call_raw(client, id, tool, arguments).await;
    assert_eq!(result["isError"], true, "{tool}: {result}");
    text(&result).to_owned()
}

fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or_default()
}

fn items(result: &Value) -> Vec<Value> {
    result["structuredContent"]["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn repos(names: &[&str]) -> Value {
    Value::Array(
        names
            .iter()
            .map(|name| json!({ "name": name, "full_name": format!("octo/{name}") }))
            .collect(),
    )
}

#[tokio::test]
async fn the_tools_are_gumcps_twenty_four_in_its_order() {
    let upstream = MockServer::start().await;
    let root = tempfile::tempdir().unwrap();
    let mut client = github(root.path(), &upstream);
    let listed = client
        .request(1, "tools/list", json!({ "_meta": modern_meta() }))
        .await;
    let tools = listed["result"]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools
        .iter()
        .map(|tool| tool["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, TOOLS);
    let schema =
        |name: &str| tools.iter().find(|tool| tool["name"] == name).unwrap()["inputSchema"].clone();
    assert_eq!(
        schema("add_file_to_repository")["required"],
        json!([
            "owner",
            "repo_name",
            "path",
            "content",
            "branch",
            "commit_message"
        ])
    );
    assert_eq!(schema("star_repository")["required"], json!(["repo_name"]));
    assert_eq!(
        schema("create_repository")["properties"]["autoInit"]["type"],
        "boolean"
    );
}

#[tokio::test]
async fn every_tool_calls_github_as_its_api_expects() {
    let upstream = MockServer::start().await;
    let base = upstream.uri();

    // Repository management.
    gh("POST", "/user/repos")
        .and(header("content-type", "application/json"))
        .and(body_json(json!({
            "name": "demo", "description": "A demo", "private": true, "auto_init": true, "has_wiki": false
        })))
        .respond_with(created(json!({
            "id": 1, "name": "demo", "full_name": "octo/demo", "private": true, "owner": { "login": "octo" }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("PUT", "/repos/octo/demo/topics")
        .and(body_json(json!({ "names": ["rust", "mcp-server"] })))
        .respond_with(answer(json!({ "names": ["rust", "mcp-server"] })))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("GET", "/search/repositories")
        .and(query_param("q", "guMCP language:python"))
        .and(query_param("sort", "stars"))
        .and(query_param("order", "desc"))
        .and(query_param("per_page", "2"))
        .respond_with(
            answer(json!({ "total_count": 40, "incomplete_results": false, "items": repos(&["a", "b"]) }))
                .insert_header(
                    "link",
                    format!("<{base}/search/repositories?q=guMCP&per_page=2&page=2>; rel=\"next\""),
                ),
        )
        .expect(1)
        .mount(&upstream)
        .await;
    gh("GET", "/users/octo/repos")
        .and(query_param("type", "owner"))
        .and(query_param("sort", "updated"))
        .and(query_param("direction", "desc"))
        .and(query_param("per_page", "100"))
        .respond_with(answer(repos(&["hello", "world"])))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("GET", "/orgs/ant-design/repos")
        .and(query_param("per_page", "100"))
        .respond_with(answer(repos(&["ant-design"])))
        .expect(1)
        .mount(&upstream)
        .await;

    // Contents and commits.
    let readme = "# Hello\n\nThis is a test repository.\n";
    let encoded = base64::engine::general_purpose::STANDARD.encode(readme);
    let wrapped = format!("{}\n{}\n", &encoded[..20], &encoded[20..]);
    gh(
        "GET",
        "/repos/octo/hello/contents/docs/My%20Notes/read%20me.md",
    )
    .and(query_param("ref", "feature/x"))
    .respond_with(answer(json!({
        "type": "file", "name": "read me.md", "path": "docs/My Notes/read me.md",
        "sha": "3d21ec53a331a6f037a91c368710b99387d012c1", "encoding": "base64", "content": wrapped
    })))
    .expect(1)
    .mount(&upstream)
    .await;
    gh("GET", "/repos/octo/hello/languages")
        .respond_with(answer(json!({ "Rust": 123456, "Shell": 789 })))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("PUT", "/repos/octo/hello/contents/src/new%20file.rs")
        .and(body_json(json!({
            "message": "Add a file",
            "content": base64::engine::general_purpose::STANDARD.encode("fn main() {}\n"),
            "branch": "main",
            "committer": { "name": "Octo Cat", "email": "octo@example.com" }
        })))
        .respond_with(created(json!({
            "content": { "name": "new file.rs", "path": "src/new file.rs", "sha": "95b966ae1c166bd92f8ae7d1c313e738c731dfc3" },
            "commit": { "sha": SHA, "message": "Add a file" }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("GET", "/repos/octo/hello/commits")
        .and(query_param("sha", "main"))
        .and(query_param("path", "src/lib.rs"))
        .and(query_param("author", "octo"))
        .and(query_param("per_page", "2"))
        .respond_with(answer(json!([{ "sha": SHA }, { "sha": "b".repeat(40) }])))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("GET", &format!("/repos/octo/hello/commits/{SHA}"))
        .respond_with(answer(
            json!({ "sha": SHA, "commit": { "message": "Create README.md" } }),
        ))
        .expect(1)
        .mount(&upstream)
        .await;

    // Stars.
    // GitHub asks for an explicit zero Content-Length here.
    gh("PUT", "/user/starred/octo/hello")
        .and(header("content-length", "0"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("GET", "/repos/octo/hello/stargazers")
        .and(query_param("per_page", "100"))
        .respond_with(answer(json!([{ "login": "ada" }, { "login": "bob" }])))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("GET", "/repos/octo/hello")
        .respond_with(answer(
            json!({ "full_name": "octo/hello", "stargazers_count": 42 }),
        ))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("GET", "/user/starred")
        .and(query_param("per_page", "1"))
        .respond_with(answer(repos(&["starred"])).insert_header(
            "link",
            format!("<{base}/user/starred?per_page=1&page=2>; rel=\"next\""),
        ))
        .expect(1)
        .mount(&upstream)
        .await;

    // Issues.
    gh("GET", "/repos/octo/hello/milestones")
        .and(query_param("state", "all"))
        .and(query_param("page", "1"))
        .respond_with(answer(json!([
            { "number": 2, "title": "v0.9" }, { "number": 3, "title": "v1.0" }
        ])))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("GET", "/repos/octo/hello/issues")
        .and(query_param("state", "all"))
        .and(query_param("labels", "bug,ui"))
        .and(query_param("milestone", "3"))
        .and(query_param("assignee", "ada"))
        .and(query_param("since", "2024-01-01T00:00:00Z"))
        .and(query_param("sort", "comments"))
        .and(query_param("direction", "asc"))
        .and(query_param("per_page", "100"))
        .respond_with(answer(json!([{ "number": 8, "title": "Crash" }])))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("GET", "/repos/octo/hello/issues/8")
        .respond_with(answer(
            json!({ "number": 8, "title": "Crash", "state": "open" }),
        ))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("POST", "/repos/octo/hello/issues")
        .and(body_json(json!({
            "title": "Crash on start", "body": "It crashes.", "labels": ["bug", "ui"], "assignees": ["ada", "bob"], "milestone": 3
        })))
        .respond_with(created(json!({ "number": 9, "title": "Crash on start" })))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("PATCH", "/repos/octo/hello/issues/8")
        .and(body_json(
            json!({ "title": "Crash (fixed)", "body": "Fixed in 1.0." }),
        ))
        .respond_with(answer(json!({ "number": 8, "title": "Crash (fixed)" })))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("POST", "/repos/octo/hello/issues/8/comments")
        .and(body_json(json!({ "body": "Thanks!" })))
        .respond_with(created(json!({ "id": 2887380907_u64, "body": "Thanks!" })))
        .expect(1)
        .mount(&upstream)
        .await;

    // Branches and pull requests.
    gh("GET", "/repos/octo/hello/branches")
        .and(query_param("per_page", "100"))
        .respond_with(answer(
            json!([{ "name": "main", "commit": { "sha": SHA } }]),
        ))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("GET", "/repos/octo/hello/git/ref/heads/release/1.0")
        .respond_with(answer(json!({
            "ref": "refs/heads/release/1.0", "object": { "sha": SHA, "type": "commit" }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("POST", "/repos/octo/hello/git/refs")
        .and(body_json(
            json!({ "ref": "refs/heads/feature/login", "sha": SHA }),
        ))
        .respond_with(created(json!({
            "ref": "refs/heads/feature/login", "object": { "sha": SHA, "type": "commit" }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("GET", "/repos/octo/hello/pulls")
        .and(query_param("state", "all"))
        .and(query_param("head", "octo:feature/login"))
        .and(query_param("base", "main"))
        .and(query_param("per_page", "100"))
        .and(query_param_is_missing("draft"))
        .and(query_param_is_missing("since"))
        .respond_with(answer(json!([
            { "number": 7, "draft": true, "updated_at": "2024-06-02T00:00:00Z" },
            { "number": 6, "draft": false, "updated_at": "2024-06-01T00:00:00Z" },
            { "number": 5, "draft": false, "updated_at": "2024-04-01T00:00:00Z" },
            { "number": 4, "draft": false, "updated_at": "2024-01-01T00:00:00Z" }
        ])))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("GET", "/repos/octo/hello/pulls/6")
        .respond_with(answer(json!({ "number": 6, "state": "open" })))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("POST", "/repos/octo/hello/pulls")
        .and(body_json(json!({
            "title": "Login", "body": "Adds a login page.", "base": "main", "head": "feature/login",
            "draft": true, "maintainer_can_modify": false
        })))
        .respond_with(created(json!({ "number": 10, "draft": true })))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("POST", "/repos/octo/hello/forks")
        .and(body_json(json!({})))
        .respond_with(
            ResponseTemplate::new(202)
                .set_body_json(json!({ "full_name": "alice/hello", "fork": true })),
        )
        .expect(1)
        .mount(&upstream)
        .await;

    let root = tempfile::tempdir().unwrap();
    let mut client = github(root.path(), &upstream);
    let repo = |extra: Value| {
        let mut arguments = json!({ "owner": "octo", "repo_name": "hello" });
        for (key, value) in extra.as_object().unwrap() {
            arguments[key] = value.clone();
        }
        arguments
    };

    let made = call(
        &mut client,
        1,
        "create_repository",
        json!({
            "name": "demo", "description": "A demo", "private": true, "autoInit": true,
            "has_wiki": false, "topics": " Rust, mcp-server ,"
        }),
    )
    .await;
    assert_eq!(made["structuredContent"]["full_name"], "octo/demo");
    assert_eq!(
        made["structuredContent"]["topics"],
        json!(["rust", "mcp-server"])
    );

    let found = call(
        &mut client,
        2,
        "search_repositories",
        json!({ "query": "guMCP language:python", "sort": "stars", "order": "desc", "max_limit": 2 }),
    )
    .await;
    assert_eq!(items(&found).len(), 2, "{found}");
    assert_eq!(items(&found)[0]["full_name"], "octo/a");

    let user_repos = call(
        &mut client,
        3,
        "list_public_user_repositories",
        json!({ "username": "octo", "type": "owner", "sort": "updated", "direction": "desc" }),
    )
    .await;
    assert_eq!(items(&user_repos).len(), 2);

    let org_repos = call(
        &mut client,
        4,
        "list_organization_repositories",
        json!({ "org_name": "ant-design" }),
    )
    .await;
    assert_eq!(items(&org_repos)[0]["name"], "ant-design");

    let file = call(
        &mut client,
        5,
        "get_contents",
        repo(json!({ "path": "/docs/My Notes/read me.md", "branch": "feature/x" })),
    )
    .await;
    assert_eq!(file["structuredContent"]["decoded_content"], readme);
    assert_eq!(file["structuredContent"]["encoding"], "base64");

    let languages = call(
        &mut client,
        6,
        "list_repository_languages",
        json!({ "repo_name": "octo/hello" }),
    )
    .await;
    assert_eq!(languages["structuredContent"]["Rust"], 123456);

    let added = call(
        &mut client,
        7,
        "add_file_to_repository",
        repo(json!({
            "path": "src/new file.rs", "content": "fn main() {}\n", "branch": "main",
            "commit_message": "Add a file", "committer_name": "Octo Cat", "committer_email": "octo@example.com"
        })),
    )
    .await;
    assert_eq!(added["structuredContent"]["commit"]["sha"], SHA);

    let commits = call(
        &mut client,
        8,
        "list_commits",
        repo(json!({ "branch": "main", "path": "src/lib.rs", "author": "octo", "max_limit": 2 })),
    )
    .await;
    assert_eq!(items(&commits)[0]["sha"], SHA);

    let commit = call(
        &mut client,
        9,
        "get_commit",
        repo(json!({ "commit_sha": SHA })),
    )
    .await;
    assert_eq!(
        commit["structuredContent"]["commit"]["message"],
        "Create README.md"
    );

    let starred = call(
        &mut client,
        10,
        "star_repository",
        json!({ "repo_name": "octo/hello" }),
    )
    .await;
    assert_eq!(starred["structuredContent"], json!({ "success": true }));

    let stargazers = call(&mut client, 11, "list_stargazers", repo(json!({}))).await;
    assert_eq!(items(&stargazers).len(), 2);

    let count = call(&mut client, 12, "get_stargazers_count", repo(json!({}))).await;
    assert_eq!(text(&count), "42");
    assert_eq!(count["structuredContent"], json!({ "result": 42 }));

    let mine = call(
        &mut client,
        13,
        "list_starred_repos_by_user",
        json!({ "max_limit": 1 }),
    )
    .await;
    assert_eq!(items(&mine).len(), 1);

    let issues = call(
        &mut client,
        14,
        "list_issues",
        repo(json!({
            "state": "all", "labels": "bug, ui", "milestone": "v1.0", "assignee": "ada",
            "since": "2024-01-01T00:00:00Z", "sort": "comments", "direction": "asc"
        })),
    )
    .await;
    assert_eq!(items(&issues)[0]["number"], 8);

    let issue = call(
        &mut client,
        15,
        "get_issue",
        repo(json!({ "issue_number": "8" })),
    )
    .await;
    assert_eq!(issue["structuredContent"]["title"], "Crash");

    let new_issue = call(
        &mut client,
        16,
        "create_issue",
        repo(json!({
            "title": "Crash on start", "body": "It crashes.", "labels": "bug, ui",
            "assignees": "ada,bob", "milestone": 3
        })),
    )
    .await;
    assert_eq!(new_issue["structuredContent"]["number"], 9);

    let updated = call(
        &mut client,
        17,
        "update_issue",
        repo(json!({ "issue_number": "8", "title": "Crash (fixed)", "body": "Fixed in 1.0." })),
    )
    .await;
    assert_eq!(updated["structuredContent"]["title"], "Crash (fixed)");

    let comment = call(
        &mut client,
        18,
        "add_comment_to_issue",
        repo(json!({ "issue_number": "8", "comment": "Thanks!" })),
    )
    .await;
    assert_eq!(comment["structuredContent"]["body"], "Thanks!");

    let branches = call(&mut client, 19, "list_branches", repo(json!({}))).await;
    assert_eq!(items(&branches)[0]["name"], "main");

    let branch = call(
        &mut client,
        20,
        "create_branch",
        repo(json!({ "branch_name": "feature/login", "start_point": "release/1.0" })),
    )
    .await;
    assert_eq!(
        branch["structuredContent"]["ref"],
        "refs/heads/feature/login"
    );

    let pulls = call(
        &mut client,
        21,
        "list_pull_requests",
        repo(json!({
            "state": "all", "head": "feature/login", "base": "main",
            "draft": false, "since": "2024-03-01", "max_limit": 1
        })),
    )
    .await;
    let numbers: Vec<Value> = items(&pulls).iter().map(|p| p["number"].clone()).collect();
    assert_eq!(numbers, [json!(6)], "{pulls}");

    let pull = call(
        &mut client,
        22,
        "get_pull_request",
        repo(json!({ "pull_request_number": "6" })),
    )
    .await;
    assert_eq!(pull["structuredContent"]["state"], "open");

    let opened = call(
        &mut client,
        23,
        "create_pull_request",
        repo(json!({
            "title": "Login", "body": "Adds a login page.", "base": "main", "head": "feature/login",
            "draft": true, "maintainer_can_modify": false
        })),
    )
    .await;
    assert_eq!(opened["structuredContent"]["number"], 10);

    let fork = call(
        &mut client,
        24,
        "fork_repository",
        json!({ "repo_name": "octo/hello" }),
    )
    .await;
    assert_eq!(fork["structuredContent"]["full_name"], "alice/hello");

    upstream.verify().await;
}

#[tokio::test]
async fn lists_follow_link_pages_up_to_max_limit_or_ten_pages() {
    let upstream = MockServer::start().await;
    let base = upstream.uri();
    let big = upstream.uri();
    // A hundred stargazers a page, and always a next page.
    let pages = move |request: &Request| {
        let page: usize = request
            .url
            .query_pairs()
            .find(|(key, _)| key == "page")
            .and_then(|(_, value)| value.parse().ok())
            .unwrap_or(1);
        let logins: Vec<Value> = (0..100)
            .map(|i| json!({ "login": format!("user{}", (page - 1) * 100 + i) }))
            .collect();
        answer(Value::Array(logins)).insert_header(
            "link",
            format!(
                "<{base}/repositories/1/stargazers?per_page=100&page={}>; rel=\"next\", <{base}/repositories/1/stargazers?per_page=100&page=99>; rel=\"last\"",
                page + 1
            ),
        )
    };
    gh("GET", "/repos/octo/hello/stargazers")
        .and(query_param("per_page", "100"))
        .respond_with(pages.clone())
        .expect(1)
        .mount(&upstream)
        .await;
    gh("GET", "/repositories/1/stargazers")
        .and(query_param("per_page", "100"))
        .respond_with(pages)
        .expect(2)
        .mount(&upstream)
        .await;
    // Without max_limit: 100 a page, ten pages at most.
    gh("GET", "/repos/octo/big/stargazers")
        .and(query_param("per_page", "100"))
        .respond_with(move |_: &Request| {
            let next = format!("{big}/repos/octo/big/stargazers?per_page=100&page=2");
            answer(json!([{ "login": "someone" }]))
                .insert_header("link", format!("<{next}>; rel=\"next\""))
        })
        .expect(10)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = github(root.path(), &upstream);

    // 250 of them: three pages of 100, the last cut.
    let some = call(
        &mut client,
        1,
        "list_stargazers",
        json!({ "owner": "octo", "repo_name": "hello", "max_limit": 250 }),
    )
    .await;
    let logins: Vec<Value> = items(&some).iter().map(|u| u["login"].clone()).collect();
    assert_eq!(
        logins,
        (0..250)
            .map(|i| json!(format!("user{i}")))
            .collect::<Vec<_>>()
    );

    let capped = call(
        &mut client,
        2,
        "list_stargazers",
        json!({ "owner": "octo", "repo_name": "big" }),
    )
    .await;
    assert_eq!(items(&capped).len(), 10);
    upstream.verify().await;
}

#[tokio::test]
async fn get_contents_walks_the_tree_when_recursive() {
    let upstream = MockServer::start().await;
    let entry = |path: &str, kind: &str| {
        let name = path.rsplit('/').next().unwrap();
        json!({ "name": name, "path": path, "type": kind })
    };
    gh("GET", "/repos/octo/hello/contents/src")
        .and(query_param("ref", "main"))
        .respond_with(answer(json!([
            entry("src/main.rs", "file"),
            entry("src/net", "dir"),
            entry("src/util", "dir")
        ])))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("GET", "/repos/octo/hello/contents/src/util")
        .and(query_param("ref", "main"))
        .respond_with(answer(json!([entry("src/util/mod.rs", "file")])))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("GET", "/repos/octo/hello/contents/src/net")
        .and(query_param("ref", "main"))
        .respond_with(answer(json!([
            entry("src/net/tcp.rs", "file"),
            entry("src/net/tls", "dir")
        ])))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("GET", "/repos/octo/hello/contents/src/net/tls")
        .and(query_param("ref", "main"))
        .respond_with(answer(json!([])))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("GET", "/repos/octo/hello/contents/")
        .and(query_param_is_missing("ref"))
        .respond_with(answer(json!([
            entry("README.md", "file"),
            entry("src", "dir")
        ])))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = github(root.path(), &upstream);

    let tree = call(
        &mut client,
        1,
        "get_contents",
        json!({ "owner": "octo", "repo_name": "hello", "path": "src", "branch": "main", "recursive": true }),
    )
    .await;
    let paths: Vec<Value> = items(&tree).iter().map(|e| e["path"].clone()).collect();
    assert_eq!(
        paths,
        [
            "src/main.rs",
            "src/net",
            "src/net/tcp.rs",
            "src/net/tls",
            "src/util",
            "src/util/mod.rs"
        ]
        .map(|p| json!(p))
    );

    // Without `recursive`, a directory is its own entries; the root is the empty path.
    let top = call(
        &mut client,
        2,
        "get_contents",
        json!({ "owner": "octo", "repo_name": "hello", "path": "" }),
    )
    .await;
    assert_eq!(items(&top).len(), 2);
    upstream.verify().await;
}

#[tokio::test]
async fn failures_say_what_is_wrong_and_nothing_is_sent_for_bad_arguments() {
    let upstream = MockServer::start().await;
    gh("GET", "/repos/octo/missing/issues/1")
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "message": "Not Found", "documentation_url": "https://docs.github.com/rest/issues/issues#get-an-issue", "status": "404"
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("GET", "/repos/octo/hello/git/ref/heads/nope")
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({ "message": "Not Found" })))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("GET", "/repos/octo/hello/milestones")
        .respond_with(answer(json!([{ "number": 1, "title": "v1" }])))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("PUT", "/repos/octo/hello/contents/README.md")
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "message": "Invalid request.\n\n\"sha\" wasn't supplied.", "status": "422"
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("GET", "/user/starred")
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(json!({ "message": "API rate limit exceeded for user ID 1." })),
        )
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = github(root.path(), &upstream);

    let missing = failing(
        &mut client,
        1,
        "get_issue",
        json!({ "owner": "octo", "repo_name": "missing", "issue_number": "1" }),
    )
    .await;
    assert_eq!(missing, "github answered HTTP 404: Not Found");

    let no_start = failing(
        &mut client,
        2,
        "create_branch",
        json!({ "owner": "octo", "repo_name": "hello", "branch_name": "x", "start_point": "nope" }),
    )
    .await;
    assert!(no_start.contains("start point \"nope\""), "{no_start}");
    assert!(no_start.contains("404"), "{no_start}");

    let no_milestone = failing(
        &mut client,
        3,
        "list_issues",
        json!({ "owner": "octo", "repo_name": "hello", "milestone": "v2" }),
    )
    .await;
    assert!(
        no_milestone.contains("no milestone titled \"v2\""),
        "{no_milestone}"
    );

    let exists = failing(
        &mut client,
        4,
        "add_file_to_repository",
        json!({
            "owner": "octo", "repo_name": "hello", "path": "README.md", "content": "x",
            "branch": "main", "commit_message": "m"
        }),
    )
    .await;
    assert!(exists.contains("\"sha\" wasn't supplied"), "{exists}");

    let limited = failing(&mut client, 5, "list_starred_repos_by_user", json!({})).await;
    assert!(limited.contains("rate limit"), "{limited}");

    // Refused before anything is sent.
    let bare = failing(
        &mut client,
        6,
        "star_repository",
        json!({ "repo_name": "hello" }),
    )
    .await;
    assert!(bare.contains("'owner/repository'"), "{bare}");
    let deep = failing(
        &mut client,
        7,
        "fork_repository",
        json!({ "repo_name": "octo/hello/extra" }),
    )
    .await;
    assert!(deep.contains("not a repository name"), "{deep}");
    let escape = failing(
        &mut client,
        8,
        "get_contents",
        json!({ "owner": "octo", "repo_name": "hello", "path": "docs/../../../user" }),
    )
    .await;
    assert!(escape.contains("'..'"), "{escape}");
    let since = failing(
        &mut client,
        9,
        "list_pull_requests",
        json!({ "owner": "octo", "repo_name": "hello", "since": "last week" }),
    )
    .await;
    assert!(since.contains("ISO 8601"), "{since}");
    upstream.verify().await;
}

#[tokio::test]
async fn a_personal_access_token_saved_as_api_key_is_sent_as_the_bearer() {
    let upstream = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/octo/hello/languages"))
        .and(header("authorization", "Bearer ghp_personal"))
        .and(header("accept", "application/vnd.github+json"))
        .respond_with(answer(json!({ "Go": 10 })))
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(method("PUT"))
        .and(path("/repos/octo/hello/contents/a.txt"))
        .and(header("authorization", "Bearer ghp_personal"))
        .and(header("x-github-api-version", "2022-11-28"))
        .respond_with(created(json!({ "content": { "path": "a.txt" } })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = shipped_server(
        root.path(),
        "github",
        json!({ "api_key": "ghp_personal" }),
        &upstream.uri(),
    );
    let languages = call(
        &mut client,
        1,
        "list_repository_languages",
        json!({ "owner": "octo", "repo_name": "hello" }),
    )
    .await;
    assert_eq!(languages["structuredContent"]["Go"], 10);
    call(
        &mut client,
        2,
        "add_file_to_repository",
        json!({
            "owner": "octo", "repo_name": "hello", "path": "a.txt", "content": "a",
            "branch": "main", "commit_message": "a"
        }),
    )
    .await;
    upstream.verify().await;
}

#[tokio::test]
async fn a_user_without_credentials_is_told_how_to_connect() {
    let upstream = MockServer::start().await;
    let root = tempfile::tempdir().unwrap();
    let mut client = shipped_server(root.path(), "github", json!({}), &upstream.uri());
    std::fs::remove_file(
        root.path()
            .join("local_auth/credentials/github/alice_credentials.json"),
    )
    .unwrap();
    for (id, tool, arguments) in [
        (
            1,
            "get_issue",
            json!({ "owner": "o", "repo_name": "r", "issue_number": "1" }),
        ),
        (
            2,
            "create_branch",
            json!({ "owner": "o", "repo_name": "r", "branch_name": "b", "start_point": "main" }),
        ),
    ] {
        let message = failing(&mut client, id, tool, arguments).await;
        assert!(
            message.contains("auth --server github"),
            "{tool}: {message}"
        );
    }
    assert!(upstream.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_account_and_its_organizations_are_resources() {
    let upstream = MockServer::start().await;
    gh("GET", "/user")
        .respond_with(answer(json!({ "login": "ada", "id": 1 })))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("GET", "/user/orgs")
        .and(query_param("per_page", "100"))
        .and(query_param("page", "1"))
        .respond_with(answer(json!([{ "login": "octo-org", "id": 2 }])))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("GET", "/orgs/octo-org")
        .respond_with(answer(json!({
            "login": "octo-org", "name": "Octo", "avatar_url": "a", "html_url": "h",
            "description": "We build", "email": null, "public_repos": 3, "id": 2
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("GET", "/orgs/ada")
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({ "message": "Not Found" })))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("GET", "/users/ada")
        .respond_with(answer(json!({
            "login": "ada", "name": "Ada", "bio": "Maths", "public_repos": 5, "followers": 9, "following": 1
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("GET", "/repos/octo-org/hello")
        .respond_with(answer(
            json!({ "full_name": "octo-org/hello", "stargazers_count": 7, "topics": ["mcp"] }),
        ))
        .expect(1)
        .mount(&upstream)
        .await;
    let readme = base64::engine::general_purpose::STANDARD.encode("# Hello\n");
    gh("GET", "/repos/octo-org/hello/readme")
        .respond_with(answer(json!({ "encoding": "base64", "content": readme })))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("GET", "/repos/octo-org/hello/languages")
        .respond_with(answer(json!({ "Rust": 1200 })))
        .expect(1)
        .mount(&upstream)
        .await;
    gh("GET", "/repos/octo-org/hello/contributors")
        .and(query_param("per_page", "10"))
        .respond_with(answer(json!([
            { "login": "ada", "contributions": 12, "avatar_url": "a", "html_url": "h", "type": "User" }
        ])))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = github(root.path(), &upstream);

    let listed = client
        .request(1, "resources/list", json!({ "_meta": modern_meta() }))
        .await;
    assert_eq!(
        listed["result"]["resources"],
        json!([
            { "uri": "github://organization/ada", "name": "ada", "description": "Personal GitHub account", "mimeType": "application/json" },
            { "uri": "github://organization/octo-org", "name": "octo-org", "description": "GitHub organization", "mimeType": "application/json" }
        ]),
        "{listed}"
    );

    let read = |reply: &Value| -> Value {
        let contents = &reply["result"]["contents"][0];
        assert_eq!(contents["mimeType"], "application/json", "{reply}");
        serde_json::from_str(contents["text"].as_str().unwrap()).unwrap()
    };
    let org = client
        .request(
            2,
            "resources/read",
            json!({ "uri": "github://organization/octo-org", "_meta": modern_meta() }),
        )
        .await;
    assert_eq!(
        read(&org),
        json!({
            "type": "organization", "login": "octo-org", "name": "Octo", "avatar_url": "a",
            "html_url": "h", "description": "We build", "email": null, "public_repos": 3
        })
    );
    let user = read(
        &client
            .request(
                3,
                "resources/read",
                json!({ "uri": "github://organization/ada", "_meta": modern_meta() }),
            )
            .await,
    );
    assert_eq!(user["type"], "user");
    assert_eq!(user["bio"], "Maths");
    assert_eq!(user["followers"], 9);
    assert_eq!(user["location"], Value::Null);

    let repo = read(
        &client
            .request(
                4,
                "resources/read",
                json!({ "uri": "github://organization/octo-org/repository/hello", "_meta": modern_meta() }),
            )
            .await,
    );
    assert_eq!(repo["full_name"], "octo-org/hello");
    assert_eq!(repo["readme"], "# Hello\n");
    assert_eq!(repo["languages"], json!({ "Rust": 1200 }));
    assert_eq!(repo["topics"], json!(["mcp"]));
    assert_eq!(
        repo["contributors"],
        json!([{ "login": "ada", "contributions": 12, "avatar_url": "a", "html_url": "h" }])
    );

    let unknown = client
        .request(
            5,
            "resources/read",
            json!({ "uri": "github://organization/octo-org/issues/1", "_meta": modern_meta() }),
        )
        .await;
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
}
