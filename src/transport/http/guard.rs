//! DNS-rebinding protection, in front of every route of both listeners (the API and
//! `/metrics`): a browser page from another origin, or a request that reached us under a host
//! name we do not serve, is refused with 403 before any handler runs. Clients that are not
//! browsers send no `Origin` and pass.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpResponse};

use super::reply;
use crate::config::HttpSettings;

/// Which origins and hosts may call, resolved from the settings once.
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    origins: Vec<String>,
    hosts: Option<Vec<String>>,
    /// The origin of `http.public_url`: the connect pages' own forms post from it.
    own_origin: Option<String>,
}

const LOOPBACK_NAMES: &[&str] = &["localhost", "127.0.0.1", "[::1]", "::1"];

impl OriginPolicy {
    pub fn from_settings(settings: &HttpSettings) -> OriginPolicy {
        let lower = |list: &[String]| list.iter().map(|s| s.to_ascii_lowercase()).collect();
        let public = settings
            .public_url
            .as_deref()
            .and_then(|url| reqwest::Url::parse(url).ok());
        let mut hosts: Option<Vec<String>> = if !settings.allowed_hosts.is_empty() {
            Some(lower(&settings.allowed_hosts))
        } else if settings.binds_loopback() {
            Some(LOOPBACK_NAMES.iter().map(|s| (*s).to_owned()).collect())
        } else {
            None
        };
        // The public address is the operator's own name for this service (a proxy in front
        // of a loopback listener passes it on).
        if let (Some(hosts), Some(host)) = (&mut hosts, public.as_ref().and_then(|u| u.host_str()))
        {
            hosts.push(host.to_ascii_lowercase());
        }
        OriginPolicy {
            origins: lower(&settings.allowed_origins),
            hosts,
            own_origin: public.map(|url| url.origin().ascii_serialization().to_ascii_lowercase()),
        }
    }

    /// Why the request must be refused, if it must.
    pub fn refusal(&self, origin: Option<&str>, host: Option<&str>) -> Option<String> {
        if let Some(origin) = origin {
            if !self.origin_allowed(origin) {
                return Some(format!(
                    "Forbidden: origin {origin:?} is not allowed (http.allowed_origins)"
                ));
            }
        }
        if let (Some(allowed), Some(host)) = (&self.hosts, host) {
            // The allowed names are lower case already: compared in place, per request.
            let name = host_name(host);
            let served = |allowed: &String| {
                allowed.eq_ignore_ascii_case(name) || allowed.eq_ignore_ascii_case(host)
            };
            if !allowed.iter().any(served) {
                return Some(format!(
                    "Forbidden: host {host:?} is not served here (http.allowed_hosts)"
                ));
            }
        }
        None
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        if self.own_origin.as_deref() == Some(origin.as_str()) {
            return true;
        }
        if self.origins.is_empty() {
            let host = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                .map(host_name);
            return host.is_some_and(|host| LOOPBACK_NAMES.contains(&host));
        }
        self.origins
            .iter()
            .any(|allowed| allowed == "*" || *allowed == origin)
    }
}

/// `host[:port]` or `[v6]:port` without the port.
fn host_name(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    authority.split(':').next().unwrap_or(authority)
}

/// The middleware.
pub async fn check(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let refusal = request
        .app_data::<web::Data<OriginPolicy>>()
        .and_then(|access| {
            let headers = request.headers();
            let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
            access.refusal(text(header::ORIGIN), text(header::HOST))
        });
    match refusal {
        Some(why) => {
            let response: HttpResponse = reply::forbidden(&why);
            Ok(request.into_response(response).map_into_right_body())
        }
        None => Ok(next.call(request).await?.map_into_left_body()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> OriginPolicy {
        OriginPolicy::from_settings(&HttpSettings::default())
    }

    #[test]
    fn loopback_origins_and_hosts_pass_by_default() {
        let access = loopback();
        assert_eq!(access.refusal(None, Some("127.0.0.1:8000")), None);
        assert_eq!(
            access.refusal(Some("http://localhost:3000"), Some("localhost")),
            None
        );
        assert_eq!(access.refusal(None, Some("[::1]:8000")), None);
        // Host names are case-insensitive (RFC 9110 §4.2.3).
        assert_eq!(access.refusal(None, Some("LocalHost:8000")), None);
        assert!(access.refusal(None, Some("LocalHost.evil:8000")).is_some());
    }

    #[test]
    fn a_foreign_origin_or_host_is_refused() {
        let access = loopback();
        assert!(access
            .refusal(Some("http://evil.example"), Some("127.0.0.1:8000"))
            .is_some());
        assert!(access.refusal(None, Some("evil.example:8000")).is_some());
    }

    #[test]
    fn the_public_urls_origin_and_host_pass() {
        let settings = HttpSettings {
            public_url: Some("https://MCP.example.com/".to_owned()),
            ..HttpSettings::default()
        };
        let access = OriginPolicy::from_settings(&settings);
        assert_eq!(
            access.refusal(Some("https://mcp.example.com"), Some("mcp.example.com")),
            None
        );
        assert_eq!(access.refusal(None, Some("127.0.0.1:8000")), None);
        assert!(access
            .refusal(Some("http://mcp.example.com"), Some("mcp.example.com"))
            .is_some());
        assert!(access.refusal(None, Some("evil.example")).is_some());
    }

    #[test]
    fn configured_lists_replace_the_defaults() {
        let settings = HttpSettings {
            host: "0.0.0.0".to_owned(),
            allowed_origins: vec!["https://app.example.com".to_owned()],
            ..HttpSettings::default()
        };
        let access = OriginPolicy::from_settings(&settings);
        assert_eq!(
            access.refusal(Some("https://app.example.com"), Some("mcp.example.com")),
            None
        );
        assert!(access.refusal(Some("http://localhost"), None).is_some());
    }
}
