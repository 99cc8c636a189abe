//! Optional live smoke tests: one read-only call per integration against the real API, with a
//! real account. They run only where credentials are present — a `local_auth` folder named by
//! `GUMCP_LIVE_AUTH_DIR` holding `credentials/<server>/<user>_credentials.json` for
//! `GUMCP_LIVE_USER` (default `local`), as `gumcp-actors auth` writes them — and hackernews
//! (no account) only with `GUMCP_LIVE=1`. Everywhere else each test says why it skipped.
//!
//! ```sh
//! GUMCP_LIVE=1 GUMCP_LIVE_AUTH_DIR=$PWD/local_auth cargo test --test live -- --nocapture
//! ```

mod common;

use std::path::PathBuf;

use common::{call_tool, StdioClient};
use serde_json::{json, Value};

/// A stdio session on `server` with the live account, or `None` (saying why) without one.
fn live(server: &str) -> Option<StdioClient> {
    let servers = concat!(env!("CARGO_MANIFEST_DIR"), "/servers");
    let user = std::env::var("GUMCP_LIVE_USER").unwrap_or_else(|_| "local".to_owned());
    let mut env = vec![("GUMCP__SERVERS__DIR".to_owned(), servers.to_owned())];
    if server == "hackernews" {
        if std::env::var("GUMCP_LIVE").as_deref() != Ok("1") {
            eprintln!("skipped live {server}: set GUMCP_LIVE=1 to call the real API");
            return None;
        }
    } else {
        let Ok(dir) = std::env::var("GUMCP_LIVE_AUTH_DIR") else {
            eprintln!("skipped live {server}: no credentials (set GUMCP_LIVE_AUTH_DIR)");
            return None;
        };
        let file = PathBuf::from(&dir)
            .join("credentials")
            .join(server)
            .join(format!("{user}_credentials.json"));
        if !file.is_file() {
            eprintln!("skipped live {server}: no {}", file.display());
            return None;
        }
        env.push(("GUMCP__AUTH__LOCAL_DIR".to_owned(), dir));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Some(StdioClient::start_with_env(
        &["stdio", "--server", server, "--user-id", &user],
        &env,
    ))
}

/// One read-only call; the real API must answer it without error.
async fn smoke(server: &str, tool: &str, arguments: Value) {
    let Some(mut client) = live(server) else {
        return;
    };
    let result = call_tool(&mut client, 1, tool, arguments).await;
    assert_eq!(result["isError"], false, "live {server} {tool}: {result}");
    eprintln!("live {server} {tool}: ok");
}

#[tokio::test]
async fn hackernews_top_stories() {
    smoke("hackernews", "get_top_stories", json!({ "limit": 1 })).await;
}

#[tokio::test]
async fn github_search_repositories() {
    let arguments = json!({ "query": "modelcontextprotocol", "max_limit": 1 });
    smoke("github", "search_repositories", arguments).await;
}

#[tokio::test]
async fn slack_pinned_items_of_general() {
    let channel = std::env::var("GUMCP_LIVE_SLACK_CHANNEL").unwrap_or_else(|_| "#general".into());
    smoke("slack", "list_pinned_items", json!({ "channel": channel })).await;
}

#[tokio::test]
async fn linear_search_issues() {
    smoke("linear", "search_issues", json!({ "query": "a" })).await;
}

#[tokio::test]
async fn notion_users() {
    smoke("notion", "list_all_users", json!({})).await;
}

#[tokio::test]
async fn gmail_inbox() {
    let arguments = json!({ "query": "in:inbox", "max_results": 1 });
    smoke("gmail", "read_emails", arguments).await;
}

#[tokio::test]
async fn gcalendar_next_day() {
    smoke(
        "gcalendar",
        "list_events",
        json!({ "days": 1, "max_results": 1 }),
    )
    .await;
}

#[tokio::test]
async fn gsheets_sheet_names() {
    let Ok(url) = std::env::var("GUMCP_LIVE_SPREADSHEET_URL") else {
        eprintln!("skipped live gsheets: set GUMCP_LIVE_SPREADSHEET_URL to a sheet to read");
        return;
    };
    smoke(
        "gsheets",
        "get-sheet-names",
        json!({ "spreadsheet_url": url }),
    )
    .await;
}

#[tokio::test]
async fn perplexity_search() {
    smoke("perplexity", "search", json!({ "query": "What is MCP?" })).await;
}

#[tokio::test]
async fn gdrive_search() {
    smoke("gdrive", "search", json!({ "query": "a" })).await;
}

#[tokio::test]
async fn gdocs_search() {
    smoke("gdocs", "search_docs", json!({ "query": "a" })).await;
}

#[tokio::test]
async fn gmeet_meetings_of_a_day() {
    smoke(
        "gmeet",
        "fetch_meetings_by_date",
        json!({ "date": "2025-01-06" }),
    )
    .await;
}

#[tokio::test]
async fn youtube_search() {
    smoke(
        "youtube",
        "search_videos",
        json!({ "query": "model context protocol" }),
    )
    .await;
}

#[tokio::test]
async fn outlook_inbox() {
    smoke("outlook", "read_emails", json!({ "count": 1 })).await;
}

#[tokio::test]
async fn onedrive_root() {
    smoke("onedrive", "list_files", json!({})).await;
}

#[tokio::test]
async fn word_documents() {
    smoke("word", "list_documents", json!({ "limit": 1 })).await;
}

#[tokio::test]
async fn sendgrid_templates() {
    smoke("sendgrid", "list_templates", json!({ "page_size": 1 })).await;
}

#[tokio::test]
async fn serpapi_search() {
    smoke("serpapi", "serpapi_search", json!({ "q": "MCP", "num": 1 })).await;
}

#[tokio::test]
async fn browserbase_page() {
    smoke(
        "browserbase",
        "load_webpage_tool",
        json!({ "url": "https://example.com/" }),
    )
    .await;
}

#[tokio::test]
async fn hunter_io_account() {
    smoke("hunter_io", "account_info", json!({})).await;
}

#[tokio::test]
async fn loops_find_contact() {
    smoke(
        "loops",
        "get_contact_by_email",
        json!({ "email": "nobody@example.com" }),
    )
    .await;
}

#[tokio::test]
async fn cal_me() {
    smoke("cal", "get_me", json!({})).await;
}

#[tokio::test]
async fn apollo_contact_stages() {
    smoke("apollo", "list_contact_stages", json!({})).await;
}

#[tokio::test]
async fn mailerlite_groups() {
    smoke("mailerlite", "list_groups", json!({ "limit": 1 })).await;
}

#[tokio::test]
async fn typeform_workspaces() {
    smoke("typeform", "list_workspaces", json!({})).await;
}

#[tokio::test]
async fn calendly_event_types() {
    smoke("calendly", "list_event_types", json!({})).await;
}

#[tokio::test]
async fn pagerduty_services() {
    let Some(email) = std::env::var("GUMCP_LIVE_PAGERDUTY_EMAIL").ok() else {
        eprintln!("skipped live pagerduty: set GUMCP_LIVE_PAGERDUTY_EMAIL (its From header)");
        return;
    };
    smoke(
        "pagerduty",
        "list_services",
        json!({ "email_from": email, "limit": 1 }),
    )
    .await;
}

#[tokio::test]
async fn zoom_upcoming_meetings() {
    smoke("zoom", "list_upcoming_meetings", json!({})).await;
}

#[tokio::test]
async fn dropbox_account() {
    smoke("dropbox", "get_user_info", json!({})).await;
}

#[tokio::test]
async fn clickup_workspaces() {
    smoke("clickup", "get_workspaces", json!({})).await;
}

#[tokio::test]
async fn airtable_bases() {
    smoke("airtable", "list_bases", json!({})).await;
}

#[tokio::test]
async fn monday_me() {
    smoke("monday", "get_me", json!({})).await;
}

#[tokio::test]
async fn figma_me() {
    smoke("figma", "get_me", json!({})).await;
}

#[tokio::test]
async fn reddit_hot_posts() {
    smoke(
        "reddit",
        "retrieve_reddit_post",
        json!({ "subreddit": "rust", "limit": 1 }),
    )
    .await;
}

#[tokio::test]
async fn x_profile() {
    smoke(
        "x",
        "get_user_profile",
        json!({ "username": "XDevelopers" }),
    )
    .await;
}

#[tokio::test]
async fn patreon_identity() {
    smoke("patreon", "get_identity", json!({})).await;
}

#[tokio::test]
async fn canva_profile() {
    smoke("canva", "get_user_profile", json!({})).await;
}

#[tokio::test]
async fn webflow_sites() {
    smoke("webflow", "list_sites", json!({})).await;
}

#[tokio::test]
async fn excel_search_workbooks() {
    smoke(
        "excel",
        "search_workbooks",
        json!({ "query": "a", "limit": 1 }),
    )
    .await;
}

#[tokio::test]
async fn teams_joined_teams() {
    smoke("teams", "get_teams", json!({})).await;
}

#[tokio::test]
async fn sharepoint_search_sites() {
    smoke("sharepoint", "search_sites", json!({ "query": "a" })).await;
}

#[tokio::test]
async fn jira_myself() {
    smoke("jira", "get_myself", json!({})).await;
}

#[tokio::test]
async fn hubspot_contacts() {
    smoke("hubspot", "list_contacts", json!({ "limit": 1 })).await;
}

#[tokio::test]
async fn stripe_balance() {
    smoke("stripe", "retrieve_balance", json!({})).await;
}

#[tokio::test]
async fn intercom_admins() {
    smoke("intercom", "list_admins", json!({})).await;
}

#[tokio::test]
async fn attio_lists() {
    smoke("attio", "list_lists", json!({})).await;
}

#[tokio::test]
async fn klaviyo_lists() {
    smoke("klaviyo", "get_lists", json!({})).await;
}

#[tokio::test]
async fn firecrawl_credit_usage() {
    smoke("firecrawl", "check_credit_usage", json!({})).await;
}

#[tokio::test]
async fn apify_actors() {
    smoke("apify", "list_actors", json!({ "limit": 1 })).await;
}

#[tokio::test]
async fn reducto_version() {
    smoke("reducto", "get_version", json!({})).await;
}

#[tokio::test]
async fn gmaps_geocode() {
    smoke(
        "gmaps",
        "address_to_coordinates",
        json!({ "address": "1600 Amphitheatre Parkway, Mountain View, CA" }),
    )
    .await;
}

#[tokio::test]
async fn lemlist_team() {
    smoke("lemlist", "get_team", json!({})).await;
}

#[tokio::test]
async fn ahrefs_domain_rating() {
    let yesterday = chrono::Utc::now() - chrono::Duration::days(1);
    let date = yesterday.format("%Y-%m-%d").to_string();
    smoke(
        "ahrefs",
        "domain_rating",
        json!({ "target": "ahrefs.com", "date": date }),
    )
    .await;
}

#[tokio::test]
async fn discourse_categories() {
    smoke("discourse", "list_categories", json!({})).await;
}

#[tokio::test]
async fn posthog_dashboards() {
    let arguments = match std::env::var("GUMCP_LIVE_POSTHOG_PROJECT") {
        Ok(project) => json!({ "project_id": project.parse::<i64>().unwrap_or_default() }),
        Err(_) => json!({}),
    };
    smoke("posthog", "list_dashboards", arguments).await;
}

#[tokio::test]
async fn twilio_messages() {
    smoke("twilio", "list_messages", json!({ "page_size": 1 })).await;
}

#[tokio::test]
async fn snowflake_databases() {
    smoke("snowflake", "list_databases", json!({})).await;
}

#[tokio::test]
async fn bluesky_profile() {
    smoke("bluesky", "get_my_profile", json!({})).await;
}

#[tokio::test]
async fn zendesk_open_tickets() {
    smoke(
        "zendesk",
        "search_tickets",
        json!({ "query": "status:open", "per_page": 1 }),
    )
    .await;
}

#[tokio::test]
async fn salesforce_org_limits() {
    smoke(
        "salesforce",
        "get_org_limits",
        json!({ "limit_type": "DailyApiRequests" }),
    )
    .await;
}

#[tokio::test]
async fn shopify_shop() {
    smoke("shopify", "get_shop_details", json!({})).await;
}

#[tokio::test]
async fn mailchimp_audiences() {
    smoke("mailchimp", "get_audience_list", json!({})).await;
}

#[tokio::test]
async fn paypal_products() {
    smoke("paypal", "list_products", json!({ "page_size": 1 })).await;
}

#[tokio::test]
async fn quickbooks_customers() {
    smoke(
        "quickbooks",
        "search_customers",
        json!({ "query": "a", "limit": 1 }),
    )
    .await;
}

#[tokio::test]
async fn docusign_templates() {
    smoke("docusign", "list_templates", json!({ "count": 1 })).await;
}
