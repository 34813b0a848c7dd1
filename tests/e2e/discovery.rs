//! Discovery documents and health endpoints (API.md, "Outside `/v1`").

use crate::support::{Issuer, Options};

#[tokio::test]
async fn openid_configuration_describes_this_issuer() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };

    let response = issuer.get("/.well-known/openid-configuration").await;

    assert_eq!(response.status, 200, "{response:?}");
    let content_type = response.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with("application/json"), "{response:?}");
    let base = issuer.base_url();
    let document = &response.body;
    assert_eq!(document["issuer"], base, "{document}");
    assert_eq!(
        document["jwks_uri"],
        format!("{base}/.well-known/jwks.json"),
        "{document}"
    );
    assert_eq!(
        document["introspection_endpoint"],
        format!("{base}/oauth/introspect")
    );
    assert_eq!(
        document["revocation_endpoint"],
        format!("{base}/oauth/revoke")
    );
}

#[tokio::test]
async fn openid_configuration_and_tokens_use_the_configured_public_url() {
    let public_url = "https://auth.example.test";
    let options = Options::new().env("PORTCULLIS_PUBLIC_URL", public_url);
    let Some(issuer) = Issuer::start_with(options).await else {
        return;
    };

    let document = issuer.get("/.well-known/openid-configuration").await.body;
    let alice = issuer.signup().await;

    assert_eq!(document["issuer"], public_url, "{document}");
    assert_eq!(
        document["jwks_uri"],
        format!("{public_url}/.well-known/jwks.json")
    );
    assert_eq!(alice.tokens.claims()["iss"], public_url);
}

#[tokio::test]
async fn jwks_is_a_key_set_of_public_keys() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };

    let response = issuer.get("/.well-known/jwks.json").await;

    assert_eq!(response.status, 200, "{response:?}");
    let content_type = response.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with("application/") && content_type.contains("json"));
    let keys = response.body["keys"]
        .as_array()
        .unwrap_or_else(|| panic!("{response:?}"));
    for key in keys {
        assert!(key["kty"].is_string() && key["kid"].is_string(), "{key}");
        assert!(
            key.get("k").is_none() && key.get("d").is_none(),
            "secret material: {key}"
        );
    }
}

#[tokio::test]
async fn healthz_and_readyz_return_200() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };

    for path in ["/healthz", "/readyz"] {
        let response = issuer.get(path).await;
        assert_eq!(response.status, 200, "{path}: {response:?}");
    }
}
