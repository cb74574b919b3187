//! The client assertion's JWS: header, claims, PS256 signature, compact serialization
//! (RFC 7515 §7.1: `base64url(header) . base64url(claims) . base64url(signature)`, unpadded).

use base64ct::{Base64, Base64UrlUnpadded, Encoding};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use rsa::pss::SigningKey;
use rsa::sha2::{Digest, Sha256};
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use serde::Serialize;

use super::pem::Parsed;
use super::{ASSERTION_LIFETIME_SECS, CertificateInput};
use crate::proto::error::Error;
use crate::proto::secret::Secret;

/// The JOSE header (RFC 7515 §4.1).
#[derive(Serialize)]
struct Header<'a> {
    /// Always `PS256`: RSASSA-PSS with SHA-256 and MGF1-SHA-256 (RFC 7518 §3.5).
    alg: &'static str,
    /// Always `JWT`.
    typ: &'static str,
    /// Unpadded base64url SHA-256 of the signing certificate's DER (RFC 7515 §4.1.8).
    #[serde(rename = "x5t#S256")]
    x5t_s256: String,
    /// The chain, signing certificate first, standard base64 of DER (RFC 7515 §4.1.6); only
    /// with `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN`.
    #[serde(skip_serializing_if = "Option::is_none")]
    x5c: Option<&'a [String]>,
}

/// The claims (RFC 7523 §3), times in whole seconds since the epoch.
#[derive(Serialize)]
struct Claims<'a> {
    /// The token endpoint the assertion is posted to.
    aud: &'a str,
    /// Expiry: issued + [`ASSERTION_LIFETIME_SECS`].
    exp: u64,
    /// The client id.
    iss: &'a str,
    /// A fresh version-4 GUID.
    jti: String,
    /// Not before: now.
    nbf: u64,
    /// The client id.
    sub: &'a str,
    /// Issued at: now.
    iat: u64,
}

/// Builds and signs the assertion for the parsed file.
pub(super) fn sign(input: &CertificateInput<'_>, parsed: Parsed) -> Result<Secret, Error> {
    let signing_der = parsed
        .chain
        .first()
        .ok_or_else(|| Error::internal("certificate chain without a signing certificate"))?;
    let x5c: Vec<String> = if input.send_chain {
        parsed
            .chain
            .iter()
            .map(|der| Base64::encode_string(der))
            .collect()
    } else {
        Vec::new()
    };
    let header = Header {
        alg: "PS256",
        typ: "JWT",
        x5t_s256: Base64UrlUnpadded::encode_string(&Sha256::digest(signing_der)),
        x5c: input.send_chain.then_some(x5c.as_slice()),
    };
    let exp = input
        .now_secs
        .checked_add(ASSERTION_LIFETIME_SECS)
        .ok_or_else(|| Error::internal("the clock is past the end of time"))?;
    let claims = Claims {
        aud: input.audience,
        exp,
        iss: input.client_id,
        jti: guid_v4(input.jti_random),
        nbf: input.now_secs,
        sub: input.client_id,
        iat: input.now_secs,
    };
    let mut jws = json_part(&header)?;
    jws.push('.');
    jws.push_str(&json_part(&claims)?);
    // The seed is the caller's fresh random bytes; ChaCha20 stretches it into the PSS salt
    // (32 bytes) and the blinding factor the signer draws.
    let mut rng = ChaCha20Rng::from_seed(input.signer_seed);
    let signature = SigningKey::<Sha256>::new(parsed.key)
        .try_sign_with_rng(&mut rng, jws.as_bytes())
        .map_err(|_| Error::internal("RSASSA-PSS signing failed"))?;
    jws.push('.');
    jws.push_str(&Base64UrlUnpadded::encode_string(&signature.to_vec()));
    Ok(Secret(jws))
}

/// A JSON object, base64url without padding.
fn json_part(value: &impl Serialize) -> Result<String, Error> {
    let json = serde_json::to_vec(value)
        .map_err(|_| Error::internal("client assertion JSON could not be written"))?;
    Ok(Base64UrlUnpadded::encode_string(&json))
}

/// A version-4 GUID from 16 random bytes (RFC 9562 §5.4: version nibble 4, variant `10`),
/// lower-case hex `8-4-4-4-12`: the same GUID the requests' `x-ms-client-request-id` uses.
pub(super) fn guid_v4(bytes: [u8; 16]) -> String {
    crate::proto::request::request_id(bytes)
}
