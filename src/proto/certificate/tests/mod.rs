//! The certificate assertion against OpenSSL-made fixtures (`src/proto/tests/fixtures/`,
//! how they were made is in its README): signatures verified with `rsa`'s PSS verifier and
//! the certificate's public key, header and claims compared whole, thumbprints computed by
//! `openssl x509 -outform der | sha256sum`.

use base64ct::{Base64UrlUnpadded, Encoding};
use rsa::pkcs8::DecodePublicKey;
use rsa::pkcs8::der::{Decode, Encode};
use rsa::pss::{Signature, VerifyingKey};
use rsa::sha2::Sha256;
use rsa::signature::Verifier;
use serde_json::{Value, json};
use x509_cert::Certificate;

use super::*;

mod refusals;

const PKCS8_CA_FIRST: &[u8] = include_bytes!("../../tests/fixtures/pkcs8_ca_first.pem");
const FROM_PFX: &[u8] = include_bytes!("../../tests/fixtures/from_pfx.pem");
const PKCS1: &[u8] = include_bytes!("../../tests/fixtures/pkcs1.pem");
const ENCRYPTED: &[u8] = include_bytes!("../../tests/fixtures/encrypted_pkcs8.pem");
const LEGACY_ENCRYPTED: &[u8] = include_bytes!("../../tests/fixtures/legacy_encrypted.pem");
const PBES1: &[u8] = include_bytes!("../../tests/fixtures/encrypted_pbes1.pem");
const SHA1_PRF: &[u8] = include_bytes!("../../tests/fixtures/encrypted_sha1_prf.pem");
const EC: &[u8] = include_bytes!("../../tests/fixtures/ec.pem");
const PFX: &[u8] = include_bytes!("../../tests/fixtures/leaf.pfx");
const PASSWORD: &str = "correct-horse-battery";

/// base64url(SHA-256(leaf DER)) of `openssl x509 -in leaf.crt -outform der | sha256sum` =
/// edbf2a0d7ac219a88e552186f3ca57c4e384a284e8b84facb51566901029ec37.
const LEAF_X5T_S256: &str = "7b8qDXrCGaiOVSGG88pXxOOEooTouE-stRVmkBAp7Dc";
const CLIENT_ID: &str = "22222222-2222-2222-2222-222222222222";
const AUDIENCE: &str =
    "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token";
const NOW: u64 = 1_767_225_000;

fn input<'a>(file: &'a [u8], password: Option<&'a Secret>) -> CertificateInput<'a> {
    CertificateInput {
        file,
        password,
        client_id: CLIENT_ID,
        audience: AUDIENCE,
        now_secs: NOW,
        jti_random: [0xA5; 16],
        signer_seed: [7; 32],
        send_chain: false,
    }
}

/// The base64 bodies of `label` blocks in `pem`, in file order: the standard base64 of each
/// block's DER, read from the text without decoding it.
fn block_bodies(pem: &[u8], label: &str) -> Vec<String> {
    let text = core::str::from_utf8(pem).unwrap();
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    text.split(begin.as_str())
        .skip(1)
        .map(|rest| {
            rest.split(end.as_str())
                .next()
                .unwrap()
                .split_whitespace()
                .collect()
        })
        .collect()
}

/// Checks the signature with the leaf certificate's key (salt 32) and returns header, claims.
fn verify(jws: &Secret, certificate_pem: &[u8]) -> (String, Value) {
    let parts: Vec<&str> = jws.0.split('.').collect();
    assert_eq!(parts.len(), 3, "compact JWS has three parts");
    let leaf = Base64UrlUnpadded::decode_vec(
        &block_bodies(certificate_pem, "CERTIFICATE")[0]
            .replace('+', "-")
            .replace('/', "_")
            .replace('=', ""),
    )
    .unwrap();
    let spki = Certificate::from_der(&leaf)
        .unwrap()
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .unwrap();
    let public = rsa::PublicKey::from_public_key_der(&spki).unwrap();
    let signature =
        Signature::try_from(Base64UrlUnpadded::decode_vec(parts[2]).unwrap().as_slice()).unwrap();
    let signed = format!("{}.{}", parts[0], parts[1]);
    VerifyingKey::<Sha256>::new_with_salt_len(public.clone(), 32)
        .verify(signed.as_bytes(), &signature)
        .expect("PS256 signature with salt 32 verifies");
    assert!(
        VerifyingKey::<Sha256>::new_with_salt_len(public, 20)
            .verify(signed.as_bytes(), &signature)
            .is_err(),
        "the salt is 32 bytes, not 20"
    );
    let header = String::from_utf8(Base64UrlUnpadded::decode_vec(parts[0]).unwrap()).unwrap();
    let claims = serde_json::from_slice(&Base64UrlUnpadded::decode_vec(parts[1]).unwrap()).unwrap();
    (header, claims)
}

fn expected_claims() -> Value {
    json!({
        "aud": AUDIENCE, "iss": CLIENT_ID, "sub": CLIENT_ID,
        "jti": "a5a5a5a5-a5a5-45a5-a5a5-a5a5a5a5a5a5",
        "nbf": NOW, "iat": NOW, "exp": NOW + 600,
    })
}

/// The leaf certificate's PEM (the one block of `pkcs1.pem`).
fn leaf_pem() -> &'static [u8] {
    PKCS1
}

#[test]
fn pkcs8_file_listing_the_ca_first_signs_with_the_matching_certificate() {
    let jws = client_assertion(&input(PKCS8_CA_FIRST, None)).unwrap();
    let (header, claims) = verify(&jws, leaf_pem());
    assert_eq!(
        header,
        format!(r#"{{"alg":"PS256","typ":"JWT","x5t#S256":"{LEAF_X5T_S256}"}}"#)
    );
    assert_eq!(claims, expected_claims());
}

#[test]
fn send_chain_lists_the_signing_certificate_first_then_the_others_in_file_order() {
    let bodies = block_bodies(PKCS8_CA_FIRST, "CERTIFICATE");
    let (ca, leaf) = (&bodies[0], &bodies[1]);
    let jws = client_assertion(&CertificateInput {
        send_chain: true,
        ..input(PKCS8_CA_FIRST, None)
    })
    .unwrap();
    let (header, claims) = verify(&jws, leaf_pem());
    assert_eq!(
        header,
        format!(
            r#"{{"alg":"PS256","typ":"JWT","x5t#S256":"{LEAF_X5T_S256}","x5c":["{leaf}","{ca}"]}}"#
        )
    );
    assert_eq!(claims, expected_claims());
}

#[test]
fn pkcs1_key_and_openssl_pkcs12_output_with_bag_attributes_work() {
    for file in [PKCS1, FROM_PFX] {
        let jws = client_assertion(&input(file, None)).unwrap();
        let (header, claims) = verify(&jws, leaf_pem());
        assert!(header.contains(LEAF_X5T_S256), "{header}");
        assert_eq!(claims, expected_claims());
    }
}

#[test]
fn a_password_with_a_clear_key_is_ignored() {
    let password = Secret("unused-password".into());
    let jws = client_assertion(&input(PKCS1, Some(&password))).unwrap();
    verify(&jws, leaf_pem());
}

#[test]
fn encrypted_pkcs8_key_with_the_right_password() {
    let password = Secret(PASSWORD.into());
    let jws = client_assertion(&input(ENCRYPTED, Some(&password))).unwrap();
    let (header, claims) = verify(&jws, leaf_pem());
    assert!(header.contains(LEAF_X5T_S256));
    assert_eq!(claims, expected_claims());
}

#[test]
fn fresh_random_bytes_give_a_fresh_jti_and_signature() {
    let first = client_assertion(&input(PKCS1, None)).unwrap();
    let again = client_assertion(&input(PKCS1, None)).unwrap();
    assert_eq!(
        first, again,
        "same inputs, same assertion: nothing random of its own"
    );
    let other = client_assertion(&CertificateInput {
        jti_random: [1; 16],
        signer_seed: [9; 32],
        ..input(PKCS1, None)
    })
    .unwrap();
    let (_, claims) = verify(&other, leaf_pem());
    assert_eq!(claims["jti"], "01010101-0101-4101-8101-010101010101");
    assert_ne!(first.0.rsplit('.').next(), other.0.rsplit('.').next());
}

#[test]
fn send_chain_is_true_only_for_1_and_true_in_any_case() {
    for yes in ["1", "true", "TRUE", "True"] {
        assert!(send_certificate_chain(Some(yes)), "{yes}");
    }
    for no in [
        None,
        Some(""),
        Some("0"),
        Some("false"),
        Some("yes"),
        Some(" true"),
        Some("true\n"),
        Some("2"),
    ] {
        assert!(!send_certificate_chain(no), "{no:?}");
    }
}

#[test]
fn guid_v4_has_version_4_and_the_rfc_variant() {
    assert_eq!(
        jws::guid_v4([0; 16]),
        "00000000-0000-4000-8000-000000000000"
    );
    assert_eq!(
        jws::guid_v4([0xff; 16]),
        "ffffffff-ffff-4fff-bfff-ffffffffffff"
    );
}

#[test]
fn windows_line_endings_work() {
    let crlf = String::from_utf8(PKCS8_CA_FIRST.to_vec())
        .unwrap()
        .replace('\n', "\r\n");
    let jws = client_assertion(&input(crlf.as_bytes(), None)).unwrap();
    let (header, claims) = verify(&jws, leaf_pem());
    assert!(header.contains(LEAF_X5T_S256));
    assert_eq!(claims, expected_claims());
}
