//! gmaps: Google Maps' web services with guMCP's eight tools. Three are declared in
//! `server.toml` (place details, distance matrix, elevation); five are code, because Google
//! takes several values joined with `|` (components, result types, waypoints) or because
//! guMCP's answer is shaped (the first `limit` places or reviews; routes without polylines).
//! Google answers failures with HTTP 200 and a `status`: the manifest's `body_errors` words
//! them, for the declared tools and these alike.

use std::sync::Arc;

use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::{json, Value};

use crate::servers::http::{HttpServer, Upstream};
use crate::servers::kit::{answer, required_text, text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

/// The coded tools, in guMCP's order, with their position among the eight.
const CODED: [(usize, &str); 5] = [
    (0, "address_to_coordinates"),
    (1, "coordinates_to_address"),
    (2, "search_places"),
    (4, "get_place_reviews"),
    (7, "get_directions"),
];

/// guMCP's defaults: places within 20 km, five places or reviews.
const DEFAULT_RADIUS: f64 = 20_000.0;
const DEFAULT_LIMIT: usize = 5;

fn language() -> Value {
    json!({ "type": "string", "description": "Language for results (e.g., en, es, fr)" })
}

fn coded_tool(name: &str) -> Tool {
    let latitude = json!({ "type": "number", "description": "Latitude coordinate" });
    let longitude = json!({ "type": "number", "description": "Longitude coordinate" });
    match name {
        "address_to_coordinates" => tool(
            "address_to_coordinates",
            "Get the coordinates of an address",
            json!({ "type": "object", "required": ["address"], "properties": {
                "address": { "type": "string", "description": "The address to geocode" },
                "region": { "type": "string", "description": "Country code for region biasing" },
                "components": { "type": "object", "description": "Filter results by component (country, postal_code, etc)" },
                "bounds": { "type": "string", "description": "Restrict results to a specific area (lat,lng|lat,lng)" },
                "language": language()
            } }),
        ),
        "coordinates_to_address" => tool(
            "coordinates_to_address",
            "Get the address of a set of coordinates",
            json!({ "type": "object", "required": ["latitude", "longitude"], "properties": {
                "latitude": latitude, "longitude": longitude,
                "result_type": { "type": "array", "items": { "type": "string" }, "description": "Filter results by type (street_address, country, etc)" },
                "location_type": { "type": "array", "items": { "type": "string" }, "description": "Filter by location type (ROOFTOP, RANGE_INTERPOLATED, etc)" },
                "language": language()
            } }),
        ),
        "search_places" => tool(
            "search_places",
            "Search for places around a set of coordinates",
            json!({ "type": "object", "required": ["query", "latitude", "longitude"], "properties": {
                "query": { "type": "string", "description": "Search query" },
                "latitude": latitude, "longitude": longitude,
                "radius": { "type": "number", "description": "Search radius in meters (default: 20000)" },
                "limit": { "type": "number", "description": "Number of results to return (default: 5)" },
                "type": { "type": "string", "description": "Place type (restaurant, cafe, etc)" },
                "keyword": { "type": "string", "description": "Additional keyword to filter results" },
                "language": language(),
                "min_price": { "type": "integer", "description": "Minimum price level (0-4)" },
                "max_price": { "type": "integer", "description": "Maximum price level (0-4)" },
                "open_now": { "type": "boolean", "description": "Filter for places that are open now" }
            } }),
        ),
        "get_place_reviews" => tool(
            "get_place_reviews",
            "Retrieve place reviews",
            json!({ "type": "object", "required": ["place_id"], "properties": {
                "place_id": { "type": "string", "description": "Google Places ID" },
                "limit": { "type": "number", "description": "Number of reviews to return (default: 5)" },
                "language": language()
            } }),
        ),
        _ => tool(
            "get_directions",
            "Get directions between two sets of coordinates; one block per route",
            json!({ "type": "object", "required": ["origin", "destination"], "properties": {
                "origin": { "type": "string", "description": "Origin coordinates or address" },
                "destination": { "type": "string", "description": "Destination coordinates or address" },
                "mode": { "type": "string", "description": "Travel mode (driving, walking, bicycling, transit) (default: driving)" },
                "waypoints": { "type": "array", "items": { "type": "string" }, "description": "List of waypoints" },
                "alternatives": { "type": "boolean", "description": "Whether to provide alternative routes" },
                "avoid": { "type": "string", "description": "Features to avoid (tolls, highways, ferries, indoor)" },
                "language": language(),
                "units": { "type": "string", "description": "Units system (metric, imperial)" },
                "region": { "type": "string", "description": "Region bias for results" },
                "departure_time": { "type": "string", "description": "Departure time (now or UNIX timestamp)" },
                "arrival_time": { "type": "string", "description": "Desired arrival time as UNIX timestamp" },
                "traffic_model": { "type": "string", "description": "Traffic model (best_guess, pessimistic, optimistic)" }
            } }),
        ),
    }
}

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = declared.tools();
    for (at, name) in CODED {
        tools.insert(at.min(tools.len()), coded_tool(name));
    }
    Arc::new(Gmaps {
        manifest: init.manifest,
        upstream: init.upstream,
        declared,
        tools,
    })
}

struct Gmaps {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    /// The three plain tools, run by the `http` engine.
    declared: HttpServer,
    tools: Vec<Tool>,
}

/// A query: the parameters given, in order.
type Query = Vec<(&'static str, String)>;

/// An argument as query text: strings as they are, numbers and booleans printed.
fn plain(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// Adds each of `names` that was given, under its own name.
fn given(query: &mut Query, arguments: &JsonObject, names: &[&'static str]) {
    for name in names {
        if let Some(value) = arguments.get(*name).and_then(plain) {
            query.push((name, value));
        }
    }
}

/// A list argument as Google takes several values: joined with `|`.
fn piped(arguments: &JsonObject, name: &str) -> Option<String> {
    let items = arguments.get(name)?.as_array()?;
    let texts: Vec<String> = items.iter().filter_map(plain).collect();
    (!texts.is_empty()).then(|| texts.join("|"))
}

fn number(arguments: &JsonObject, name: &str) -> Result<f64, String> {
    arguments
        .get(name)
        .and_then(Value::as_f64)
        .ok_or_else(|| format!("{name} is required"))
}

fn point(arguments: &JsonObject) -> Result<String, String> {
    Ok(format!(
        "{},{}",
        number(arguments, "latitude")?,
        number(arguments, "longitude")?
    ))
}

fn limit(arguments: &JsonObject) -> usize {
    arguments
        .get("limit")
        .and_then(Value::as_f64)
        .filter(|limit| *limit >= 0.0)
        .map_or(DEFAULT_LIMIT, |limit| limit as usize)
}

/// The request a coded tool makes: its path and query.
fn request(name: &str, arguments: &JsonObject) -> Result<(&'static str, Query), String> {
    let mut query = Query::new();
    let path = match name {
        "address_to_coordinates" => {
            query.push(("address", required_text(arguments, "address")?.to_owned()));
            given(&mut query, arguments, &["region", "bounds", "language"]);
            if let Some(Value::Object(components)) = arguments.get("components") {
                let filters: Vec<String> = components
                    .iter()
                    .filter_map(|(key, value)| Some(format!("{key}:{}", plain(value)?)))
                    .collect();
                if !filters.is_empty() {
                    query.push(("components", filters.join("|")));
                }
            }
            "/geocode/json"
        }
        "coordinates_to_address" => {
            query.push(("latlng", point(arguments)?));
            for name in ["result_type", "location_type"] {
                if let Some(value) = piped(arguments, name) {
                    query.push((name, value));
                }
            }
            given(&mut query, arguments, &["language"]);
            "/geocode/json"
        }
        "search_places" => {
            query.push(("location", point(arguments)?));
            let radius = arguments
                .get("radius")
                .and_then(Value::as_f64)
                .unwrap_or(DEFAULT_RADIUS);
            query.push(("radius", radius.to_string()));
            let mut keyword = required_text(arguments, "query")?.to_owned();
            if let Some(more) = text(arguments, "keyword").filter(|more| !more.trim().is_empty()) {
                keyword = format!("{keyword} {more}");
            }
            query.push(("keyword", keyword));
            given(&mut query, arguments, &["type", "language"]);
            for (param, name) in [("minprice", "min_price"), ("maxprice", "max_price")] {
                if let Some(value) = arguments.get(name).and_then(plain) {
                    query.push((param, value));
                }
            }
            if arguments.get("open_now").and_then(Value::as_bool) == Some(true) {
                query.push(("opennow", "true".to_owned()));
            }
            "/place/nearbysearch/json"
        }
        "get_place_reviews" => {
            query.push(("place_id", required_text(arguments, "place_id")?.to_owned()));
            query.push(("fields", "reviews".to_owned()));
            given(&mut query, arguments, &["language"]);
            "/place/details/json"
        }
        _ => {
            query.push(("origin", required_text(arguments, "origin")?.to_owned()));
            query.push((
                "destination",
                required_text(arguments, "destination")?.to_owned(),
            ));
            query.push((
                "mode",
                text(arguments, "mode").unwrap_or("driving").to_owned(),
            ));
            if let Some(waypoints) = piped(arguments, "waypoints") {
                query.push(("waypoints", waypoints));
            }
            given(
                &mut query,
                arguments,
                &[
                    "alternatives",
                    "avoid",
                    "language",
                    "units",
                    "region",
                    "departure_time",
                    "arrival_time",
                    "traffic_model",
                ],
            );
            "/directions/json"
        }
    };
    Ok((path, query))
}

/// A list of results, or guMCP's sentence when there is none.
fn found(items: Option<&Value>, none: &str) -> Result<Vec<Value>, String> {
    match items.and_then(Value::as_array) {
        Some(items) if !items.is_empty() => Ok(items.clone()),
        _ => Err(none.to_owned()),
    }
}

/// The tool's answer from Google's: results (places cut at `limit`), the first `limit`
/// reviews with their count, routes without their polylines.
fn shaped(name: &str, arguments: &JsonObject, mut answer: Value) -> Result<Value, String> {
    match name {
        "search_places" => {
            let places = found(answer.get("results"), "No places found")?;
            answer["results"] = Value::Array(places.into_iter().take(limit(arguments)).collect());
            Ok(answer)
        }
        "get_place_reviews" => {
            let reviews = found(answer.pointer("/result/reviews"), "No reviews found")?;
            let total = reviews.len();
            let reviews: Vec<Value> = reviews.into_iter().take(limit(arguments)).collect();
            Ok(json!({ "reviews": reviews, "total": total }))
        }
        "get_directions" => {
            let routes = found(answer.get("routes"), "No directions found")?;
            Ok(Value::Array(
                routes
                    .into_iter()
                    .map(|mut route| {
                        if let Some(route) = route.as_object_mut() {
                            route.remove("overview_polyline");
                        }
                        if let Some(legs) = route.get_mut("legs").and_then(Value::as_array_mut) {
                            for step in legs
                                .iter_mut()
                                .filter_map(|leg| leg.get_mut("steps")?.as_array_mut())
                                .flatten()
                                .filter_map(Value::as_object_mut)
                            {
                                step.remove("polyline");
                            }
                        }
                        route
                    })
                    .collect(),
            ))
        }
        _ => found(answer.get("results"), "No results found").map(Value::Array),
    }
}

impl Gmaps {
    async fn call(
        &self,
        name: &str,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let (path, query) = request(name, arguments)?;
        let answer = self
            .upstream
            .manifest_api(&self.manifest, ctx)
            .json(Method::GET, path, &query, None)
            .await?;
        if let Some(failure) = self.manifest.body_errors.failure(&answer) {
            return Err(format!("Google Maps refused the request: {failure}"));
        }
        shaped(name, arguments, answer)
    }
}

impl McpServer for Gmaps {
    fn features(&self) -> Features {
        self.declared.features()
    }

    fn tools(&self) -> Vec<Tool> {
        self.tools.clone()
    }

    fn call_tool<'a>(
        &'a self,
        name: &'a str,
        arguments: JsonObject,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<CallToolResult, CallError>> {
        if !CODED.iter().any(|(_, coded)| *coded == name) {
            return self.declared.call_tool(name, arguments, ctx);
        }
        Box::pin(async move { Ok(answer(self.call(name, &arguments, ctx).await)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(value: Value) -> JsonObject {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn several_values_are_joined_with_pipes() {
        let (_, query) = request(
            "address_to_coordinates",
            &args(json!({ "address": "Main St", "components": { "country": "US", "postal_code": "94043" } })),
        )
        .unwrap();
        assert!(query.contains(&("components", "country:US|postal_code:94043".to_owned())));
        let (_, query) = request(
            "get_directions",
            &args(json!({ "origin": "A", "destination": "B", "waypoints": ["C", "D"] })),
        )
        .unwrap();
        assert!(query.contains(&("waypoints", "C|D".to_owned())));
        assert!(query.contains(&("mode", "driving".to_owned())));
    }

    #[test]
    fn routes_lose_their_polylines_and_reviews_their_surplus() {
        let routes = json!({ "status": "OK", "routes": [{ "summary": "I-5", "overview_polyline": { "points": "x" },
            "legs": [{ "steps": [{ "html_instructions": "Go", "polyline": { "points": "y" } }] }] }] });
        let routes = shaped("get_directions", &JsonObject::new(), routes).unwrap();
        assert_eq!(
            routes,
            json!([{ "summary": "I-5", "legs": [{ "steps": [{ "html_instructions": "Go" }] }] }])
        );
        let reviews = json!({ "result": { "reviews": [{ "rating": 5 }, { "rating": 4 }] } });
        let reviews = shaped("get_place_reviews", &args(json!({ "limit": 1 })), reviews).unwrap();
        assert_eq!(reviews, json!({ "reviews": [{ "rating": 5 }], "total": 2 }));
    }
}
