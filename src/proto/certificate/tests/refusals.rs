//! Files the assertion refuses, each with a message naming the variable and the fix, and the
//! scan that keeps the password, the key and the assertion out of every message and `Debug`.

use super::*;

/// The error's kind and message; the message must name `names`.
fn refused(file: &[u8], password: Option<&Secret>, names: &[&str]) -> String {
    let error = client_assertion(&input(file, password)).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Configuration, "{error}");
    for name in names {
        assert!(error.message().contains(name), "{name} not in: {error}");
    }
    error.message().to_string()
}

#[test]
fn encrypted_key_with_a_wrong_or_no_password_is_refused() {
    let wrong = Secret("wrong-password-42".into());
    let names = [
        "AZURE_CLIENT_CERTIFICATE_PASSWORD",
        "AZURE_CLIENT_CERTIFICATE_PATH",
    ];
    assert!(refused(ENCRYPTED, Some(&wrong), &names).contains("check the password"));
    assert!(refused(ENCRYPTED, None, &names).contains("encrypted"));
    assert!(refused(ENCRYPTED, Some(&Secret(String::new())), &names).contains("encrypted"));
}

#[test]
fn unsupported_key_encryption_is_refused_with_the_reencrypt_command() {
    let password = Secret(PASSWORD.into());
    for file in [PBES1, SHA1_PRF] {
        refused(
            file,
            Some(&password),
            &[
                "AZURE_CLIENT_CERTIFICATE_PATH",
                "openssl pkcs8 -topk8 -v2 aes-256-cbc",
            ],
        );
    }
}

#[test]
fn legacy_encrypted_pem_is_refused_with_the_conversion_command() {
    let password = Secret(PASSWORD.into());
    refused(
        LEGACY_ENCRYPTED,
        Some(&password),
        &["AZURE_CLIENT_CERTIFICATE_PATH", "openssl pkcs8 -topk8"],
    );
}

#[test]
fn non_rsa_keys_are_refused() {
    assert!(refused(EC, None, &["AZURE_CLIENT_CERTIFICATE_PATH", "RSA"]).contains("an EC key"));
    let sec1 = [
        &b"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n"[..],
        leaf_pem(),
    ]
    .concat();
    refused(
        &sec1,
        None,
        &["AZURE_CLIENT_CERTIFICATE_PATH", "'EC PRIVATE KEY'", "RSA"],
    );
}

#[test]
fn pkcs12_is_refused_with_the_openssl_command() {
    refused(
        PFX,
        None,
        &[
            "AZURE_CLIENT_CERTIFICATE_PATH",
            "PKCS#12",
            "openssl pkcs12 -in cert.pfx -out cert.pem -nodes",
        ],
    );
}

/// `pem` without its `label` blocks.
fn without(pem: &[u8], label: &str) -> Vec<u8> {
    let text = core::str::from_utf8(pem).unwrap();
    let (begin, end) = (
        format!("-----BEGIN {label}-----"),
        format!("-----END {label}-----"),
    );
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(&begin) {
        out.push_str(&rest[..at]);
        rest = &rest[rest.find(&end).unwrap() + end.len()..];
    }
    out.push_str(rest);
    out.into_bytes()
}

#[test]
fn missing_key_missing_certificate_and_unmatched_key_are_refused() {
    let path = ["AZURE_CLIENT_CERTIFICATE_PATH"];
    assert!(
        refused(&without(PKCS8_CA_FIRST, "PRIVATE KEY"), None, &path).contains("no private key")
    );
    assert!(
        refused(&without(PKCS8_CA_FIRST, "CERTIFICATE"), None, &path).contains("no certificate")
    );
    // The leaf key with only the CA certificate: no certificate matches the key.
    let ca_only = PKCS8_CA_FIRST
        .split_at(
            PKCS8_CA_FIRST
                .windows(5)
                .rposition(|w| w == b"-----")
                .unwrap(),
        )
        .0;
    let ca_pem = &ca_only[..ca_only
        .windows(25)
        .position(|w| w == b"-----END CERTIFICATE-----")
        .unwrap()
        + 25];
    let key = [ca_pem, b"\n", &without(PKCS8_CA_FIRST, "CERTIFICATE")].concat();
    assert!(refused(&key, None, &path).contains("matches its private key"));
    assert!(refused(b"", None, &path).contains("PEM"));
}

#[test]
fn two_keys_a_cut_block_and_an_oversized_file_are_refused() {
    let path = ["AZURE_CLIENT_CERTIFICATE_PATH"];
    let two = [PKCS8_CA_FIRST, PKCS1].concat();
    assert!(refused(&two, None, &path).contains("more than one private key"));
    let cut = &PKCS1[..PKCS1.len() / 2];
    assert!(refused(cut, None, &path).contains("has no '-----END"));
    let bad_label = [&b"-----BEGIN \x01\xfe-----\n"[..], PKCS1].concat();
    assert!(refused(&bad_label, None, &path).contains("malformed '-----BEGIN' line"));
    let big = vec![b' '; CERTIFICATE_MAX_BYTES + 1];
    assert!(refused(&big, None, &path).contains("bytes"));
}

#[test]
fn no_secret_in_any_message_or_debug() {
    let password = Secret(PASSWORD.into());
    let wrong = Secret("wrong-password-42".into());
    // Every 16-character piece of every key block's base64 must stay out of sight.
    let mut key_pieces = Vec::new();
    for (file, label) in [
        (PKCS8_CA_FIRST, "PRIVATE KEY"),
        (PKCS1, "RSA PRIVATE KEY"),
        (ENCRYPTED, "ENCRYPTED PRIVATE KEY"),
        (EC, "PRIVATE KEY"),
    ] {
        for body in block_bodies(file, label) {
            key_pieces.extend(
                body.as_bytes()
                    .chunks(16)
                    .filter(|c| c.len() == 16)
                    .map(|c| String::from_utf8(c.to_vec()).unwrap()),
            );
        }
    }
    let jws = client_assertion(&input(PKCS1, Some(&password))).unwrap();
    let mut shown = vec![
        format!("{jws:?}"),
        format!("{:?}", input(ENCRYPTED, Some(&password))),
    ];
    let cases: [(&[u8], Option<&Secret>); 6] = [
        (ENCRYPTED, Some(&wrong)),
        (ENCRYPTED, None),
        (EC, Some(&password)),
        (LEGACY_ENCRYPTED, Some(&password)),
        (PFX, Some(&password)),
        (&PKCS1[..1200], Some(&password)),
    ];
    for (file, secret) in cases {
        let error = client_assertion(&input(file, secret)).unwrap_err();
        shown.extend([error.to_string(), format!("{error:?}")]);
    }
    for text in &shown {
        assert!(
            !text.contains(PASSWORD) && !text.contains("wrong-password-42"),
            "password in {text}"
        );
        assert!(
            !text.contains(&jws.0[..40]) && !text.contains(&jws.0[jws.0.len() - 40..]),
            "assertion in {text}"
        );
        assert!(
            !key_pieces.iter().any(|piece| text.contains(piece.as_str())),
            "key bytes in {text}"
        );
    }
}
