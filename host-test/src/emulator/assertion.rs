//! How the emulator's Entra endpoint checks a certificate client assertion (RFC 7523), as
//! Entra does for an application registered with a certificate: the header names the
//! certificate by its SHA-256 thumbprint (`x5t#S256`), the signature is RSASSA-PSS SHA-256 by
//! that certificate's key, the claims name the application (`iss` = `sub` = client id) and
//! the exact token URL (`aud`), and the time window holds. A wrong signature, another
//! certificate or a stale assertion is `invalid_client` AADSTS700027, as Entra answers.

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::Value;
use x509_cert::der::Decode;

/// Why an assertion was refused, for the error description.
pub type Refusal = String;

/// True when `assertion` is a JWS whose header names a certificate (`x5t#S256`): a
/// certificate credential's, not a federated token.
pub(super) fn names_certificate(assertion: &str) -> bool {
    let header = assertion.split('.').next().unwrap_or_default();
    Base64UrlUnpadded::decode_vec(header)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .is_some_and(|h| h.get("x5t#S256").is_some())
}

/// Checks `assertion` against the registered certificate (`certificate_der`) for a request to
/// `path` by `client_id` at `now` (unix seconds).
pub fn check(
    assertion: &str,
    certificate_der: &[u8],
    client_id: &str,
    path: &str,
    now: u64,
) -> Result<(), Refusal> {
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header, claims, signature] = parts[..] else {
        return Err("the client assertion is not a compact JWS".into());
    };
    let json = |part: &str| -> Result<Value, Refusal> {
        let bytes = Base64UrlUnpadded::decode_vec(part).map_err(|_| "not base64url")?;
        serde_json::from_slice(&bytes).map_err(|_| "not JSON".into())
    };
    let (header, claims) = (json(header)?, json(claims)?);
    if header["alg"] != "PS256" {
        return Err(format!("unsupported alg {}", header["alg"]));
    }
    let thumbprint = ring::digest::digest(&ring::digest::SHA256, certificate_der);
    if header["x5t#S256"] != Base64UrlUnpadded::encode_string(thumbprint.as_ref()) {
        return Err("the assertion names a certificate not registered on the application".into());
    }
    let signed = assertion.rsplit_once('.').map_or("", |(input, _)| input);
    let signature =
        Base64UrlUnpadded::decode_vec(signature).map_err(|_| "signature not base64url")?;
    let certificate = x509_cert::Certificate::from_der(certificate_der)
        .map_err(|e| format!("the registered certificate does not parse: {e}"))?;
    // The RSAPublicKey inside the SubjectPublicKeyInfo, as ring takes it.
    let public_key = certificate
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .raw_bytes()
        .to_vec();
    ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PSS_2048_8192_SHA256, public_key)
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| "the assertion's signature is invalid".to_string())?;
    if claims["iss"] != client_id || claims["sub"] != client_id {
        return Err("iss and sub must be the client id".into());
    }
    let aud = claims["aud"].as_str().unwrap_or_default();
    if !(aud.starts_with("https://") && aud.ends_with(path)) {
        return Err(format!("aud {aud:?} is not this token endpoint"));
    }
    let (nbf, exp) = (claims["nbf"].as_u64(), claims["exp"].as_u64());
    match (nbf, exp) {
        (Some(nbf), Some(exp)) if nbf <= now + 300 && now < exp && exp - nbf <= 3_600 => {}
        _ => return Err("the assertion is not within its valid time range".into()),
    }
    if claims["jti"].as_str().is_none_or(str::is_empty) {
        return Err("the assertion has no jti".into());
    }
    Ok(())
}
