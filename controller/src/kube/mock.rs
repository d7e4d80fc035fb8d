//! Pieces of kube's `tower-test` mock API server shared by this module's unit tests: responses
//! shaped as the API server's.

use http::Response;
use kube::client::Body;
use serde_json::{Value, json};

/// The query without kube's empty leading pair (`?&fieldManager=...`).
pub(crate) fn query_pairs(query: Option<&str>) -> String {
    let pairs: Vec<&str> = query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .collect();
    pairs.join("&")
}

/// A JSON response with `code`.
pub(crate) fn respond(code: u16, body: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

/// A `Status` failure, as the API server answers errors; `details` names the object.
pub(crate) fn status(code: u16, reason: &str, message: &str, details: Value) -> Response<Body> {
    respond(
        code,
        &json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "details": details,
            "code": code,
        }),
    )
}
