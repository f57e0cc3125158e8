//! OAuth Client ID Metadata Documents: a JSON object served at the `client_id` URL.

use serde_json::Value;
use url::Url;

/// Whether a `client_id` may name a metadata document: `https`, a path, no `#`.
pub fn client_id_may_publish_metadata(client_id: &str) -> bool {
    if client_id.contains('#') {
        return false;
    }
    let Ok(url) = Url::parse(client_id) else {
        return false;
    };
    let after_authority = client_id
        .split_once("://")
        .map(|(_, rest)| rest)
        .and_then(|rest| rest.find('/').map(|at| &rest[at..]))
        .unwrap_or("");
    url.scheme() == "https" && !after_authority.is_empty()
}

/// The `redirect_uris` of a metadata document published for `client_id`, or `None` when `body`
/// is not one: strict UTF-8 JSON object, `client_id` equal to the requested one, `redirect_uris`
/// a list of strings each with a scheme and no `#`. Only `http`/`https` URIs are kept.
pub fn metadata_redirect_uris(body: &[u8], client_id: &str) -> Option<Vec<String>> {
    let document: Value = serde_json::from_slice(body).ok()?;
    let object = document.as_object()?;
    if object.get("client_id").and_then(Value::as_str) != Some(client_id) {
        return None;
    }
    let listed = object.get("redirect_uris")?.as_array()?;
    let mut uris = Vec::with_capacity(listed.len());
    for entry in listed {
        let uri = entry.as_str()?;
        let url = Url::parse(uri).ok()?;
        if uri.contains('#') {
            return None;
        }
        if matches!(url.scheme(), "http" | "https") {
            uris.push(uri.to_owned());
        }
    }
    Some(uris)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "https://app.example/client.json";

    #[test]
    fn only_https_client_ids_with_a_path_publish_metadata() {
        assert!(client_id_may_publish_metadata(ID));
        assert!(client_id_may_publish_metadata("https://app.example/"));
        assert!(!client_id_may_publish_metadata("https://app.example"));
        assert!(!client_id_may_publish_metadata(
            "http://app.example/client.json"
        ));
        assert!(!client_id_may_publish_metadata("https://app.example/c#x"));
        assert!(!client_id_may_publish_metadata("not a url"));
    }

    #[test]
    fn a_valid_document_lists_its_http_redirect_uris() {
        let body = br#"{"client_id": "https://app.example/client.json",
            "client_name": "App",
            "redirect_uris": ["https://app.example/cb", "http://127.0.0.1/cb", "com.example.app:/cb"]}"#;
        assert_eq!(
            metadata_redirect_uris(body, ID),
            Some(vec![
                "https://app.example/cb".to_owned(),
                "http://127.0.0.1/cb".to_owned()
            ])
        );
    }

    #[test]
    fn documents_that_break_a_rule_are_refused() {
        for body in [
            &br#"{"client_id": "https://other.example/client.json", "redirect_uris": []}"#[..],
            br#"{"client_id": "https://app.example/client.json"}"#,
            br#"{"client_id": "https://app.example/client.json", "redirect_uris": "https://a/cb"}"#,
            br#"{"client_id": "https://app.example/client.json", "redirect_uris": [1]}"#,
            br#"{"client_id": "https://app.example/client.json", "redirect_uris": ["no-scheme"]}"#,
            br#"{"client_id": "https://app.example/client.json", "redirect_uris": ["https://a/cb#f"]}"#,
            br#"{"client_id": "https://app.example/client.json", "redirect_uris": [NaN]}"#,
            br#"["https://app.example/client.json"]"#,
            b"{\"client_id\": \"https://app.example/client.json\", \"redirect_uris\": [\"https://a/\xff\"]}",
            b"",
        ] {
            assert_eq!(metadata_redirect_uris(body, ID), None, "{body:?}");
        }
    }
}
