//! Property tests: any page or document is read without panicking, and only http(s) URIs come out.

use indieauth_fetch::{html, metadata};
use proptest::prelude::*;
use url::Url;

fn markup() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("<link rel=\"redirect_uri\" href=\"".to_owned()),
        Just("<link rel=redirect_uri href=".to_owned()),
        Just("\">".to_owned()),
        Just("<!--".to_owned()),
        Just("-->".to_owned()),
        Just("<script>".to_owned()),
        Just("</script>".to_owned()),
        Just("&amp;".to_owned()),
        Just("&#x".to_owned()),
        Just("javascript:".to_owned()),
        Just("https://a.example/".to_owned()),
        Just("/cb".to_owned()),
        "[ -~]{0,12}",
        "\\PC{0,4}",
    ];
    prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

proptest! {
    #[test]
    fn pages_never_panic_and_yield_only_http_uris(page in markup()) {
        let base = Url::parse("https://app.example/client/").unwrap();
        for uri in html::link_redirect_uris(&page, &base) {
            let parsed = Url::parse(&uri).expect("a URL");
            prop_assert!(matches!(parsed.scheme(), "http" | "https"), "{uri}");
        }
    }

    #[test]
    fn documents_never_panic_and_yield_only_http_uris(
        uris in prop::collection::vec("(https?|javascript|ftp|x-app)://[a-z]{1,5}(/[a-z#]{0,4})?", 0..5),
        extra in "[ -~]{0,16}",
    ) {
        let id = "https://app.example/client.json";
        let body = serde_json::json!({"client_id": id, "redirect_uris": uris}).to_string();
        if let Some(found) = metadata::metadata_redirect_uris(body.as_bytes(), id) {
            for uri in &found {
                prop_assert!(uri.starts_with("http://") || uri.starts_with("https://"), "{uri}");
                prop_assert!(!uri.contains('#'));
            }
        }
        let _ = metadata::metadata_redirect_uris(format!("{body}{extra}").as_bytes(), id);
        let _ = metadata::metadata_redirect_uris(extra.as_bytes(), id);
    }
}
