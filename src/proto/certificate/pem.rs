//! The certificate file: PEM blocks → the RSA private key, the signing certificate and the
//! rest of the chain.
//!
//! Rules (the table and the reasons are in [`crate::proto::certificate`]'s module docs):
//!
//! * Only `-----BEGIN …-----` / `-----END …-----` blocks count; text between them (OpenSSL's
//!   `Bag Attributes`, `subject=` lines) is ignored. Each block is decoded by `pem-rfc7468`
//!   (RFC 7468 strict: no headers), so a legacy OpenSSL-encrypted key (`Proc-Type:` headers)
//!   gets its own message.
//! * Exactly one private key: `PRIVATE KEY` (PKCS#8), `RSA PRIVATE KEY` (PKCS#1) or
//!   `ENCRYPTED PRIVATE KEY` (PKCS#8 PBES2, decrypted with the password). Any other
//!   `… PRIVATE KEY` label, or a PKCS#8 key whose algorithm is not `rsaEncryption`, is
//!   refused: RSA is required.
//! * Every `CERTIFICATE` block is decoded with `x509-cert` (its RFC 5280 profile, which
//!   tolerates 21-byte serial numbers); only the public key is used: the signing certificate
//!   is the first one whose RSA public key (modulus and exponent) is the private key's.

use rsa::PrivateKey;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::der::{Decode, Encode};
use rsa::pkcs8::{self, pkcs5};
use rsa::pkcs8::{
    DecodePublicKey, EncryptedPrivateKeyInfoRef, ObjectIdentifier, PrivateKeyInfoRef,
};
use x509_cert::Certificate;

use super::{PATH_VAR, PKCS12_FIX, configuration};
use crate::proto::error::Error;
use crate::proto::secret::Secret;

/// What the file holds, once decoded and checked.
pub(super) struct Parsed {
    /// The RSA private key.
    pub(super) key: PrivateKey,
    /// The DER of every certificate, signing certificate first, then the others in file
    /// order (the `x5c` order).
    pub(super) chain: Vec<Vec<u8>>,
}

/// A private-key block, by PEM label.
enum KeyBlock {
    /// `PRIVATE KEY`: PKCS#8, any algorithm (checked to be RSA).
    Pkcs8(Vec<u8>),
    /// `RSA PRIVATE KEY`: PKCS#1.
    Pkcs1(Vec<u8>),
    /// `ENCRYPTED PRIVATE KEY`: PKCS#8 `EncryptedPrivateKeyInfo`.
    Encrypted(Vec<u8>),
}

const BEGIN: &[u8] = b"-----BEGIN ";
const DASHES: &[u8] = b"-----";

/// Decodes the file and pairs the key with its certificate.
pub(super) fn parse(file: &[u8], password: Option<&Secret>) -> Result<Parsed, Error> {
    if find(file, BEGIN, 0).is_none() {
        return Err(configuration(format!(
            "{PATH_VAR} does not hold PEM text (no '-----BEGIN' line): if it is a PKCS#12 (.pfx/.p12) file, {PKCS12_FIX}"
        )));
    }
    let mut key = None;
    let mut certificates = Vec::new();
    let mut from = 0;
    while let Some(begin) = find(file, BEGIN, from) {
        let (label, block, next) = block_at(file, begin)?;
        from = next;
        let found = match label {
            "CERTIFICATE" => {
                certificates.push(decode(label, block)?);
                continue;
            }
            "PRIVATE KEY" => KeyBlock::Pkcs8(decode(label, block)?),
            "RSA PRIVATE KEY" => KeyBlock::Pkcs1(decode(label, block)?),
            "ENCRYPTED PRIVATE KEY" => KeyBlock::Encrypted(decode(label, block)?),
            other if other.ends_with("PRIVATE KEY") => {
                return Err(not_rsa(&format!("a '{other}' block")));
            }
            _ => continue,
        };
        if key.replace(found).is_some() {
            return Err(configuration(format!(
                "{PATH_VAR} holds more than one private key; keep only the key of the client certificate"
            )));
        }
    }
    let key = match key {
        Some(block) => load_key(block, password)?,
        None => {
            return Err(configuration(format!(
                "{PATH_VAR} holds no private key: it must hold the certificate and its RSA private key in PEM ('PRIVATE KEY' or 'RSA PRIVATE KEY'); append the key file to it"
            )));
        }
    };
    if certificates.is_empty() {
        return Err(configuration(format!(
            "{PATH_VAR} holds no certificate: it must hold the client certificate ('-----BEGIN CERTIFICATE-----') next to its private key; append the certificate to it"
        )));
    }
    let chain = signing_first(&key, certificates)?;
    Ok(Parsed { key, chain })
}

/// The block starting at `begin`: its label, its bytes through the END line, and where to
/// look for the next one.
fn block_at(file: &[u8], begin: usize) -> Result<(&str, &[u8], usize), Error> {
    let label_at = begin + BEGIN.len();
    let label = find(file, DASHES, label_at)
        .and_then(|end| core::str::from_utf8(&file[label_at..end]).ok())
        // RFC 7468 labels are short printable ASCII; anything else is not a BEGIN line (and
        // is never quoted in a message).
        .filter(|label| {
            label.len() <= 64 && label.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
        })
        .ok_or_else(|| {
            configuration(format!(
                "{PATH_VAR} has a malformed '-----BEGIN' line; check that the file is an unmodified PEM file"
            ))
        })?;
    let end_line = format!("-----END {label}-----");
    let end = find(file, end_line.as_bytes(), label_at).ok_or_else(|| {
        configuration(format!(
            "{PATH_VAR}: the '-----BEGIN {label}-----' block has no '{end_line}' line; the file is cut or edited"
        ))
    })? + end_line.len();
    Ok((label, &file[begin..end], end))
}

/// One block's DER; a block with headers (legacy OpenSSL encryption) gets its own message.
fn decode(label: &str, block: &[u8]) -> Result<Vec<u8>, Error> {
    match pem_rfc7468::decode_vec(block) {
        Ok((_, der)) => Ok(der),
        Err(pem_rfc7468::Error::HeaderDisallowed) if label.ends_with("PRIVATE KEY") => {
            Err(configuration(format!(
                "the private key in {PATH_VAR} uses OpenSSL's legacy PEM encryption ('Proc-Type: 4,ENCRYPTED'), which azmi does not read; convert it to PKCS#8 with `openssl pkcs8 -topk8 -in key.pem -out key-pkcs8.pem` (add -nocrypt for no password, or keep one and set AZURE_CLIENT_CERTIFICATE_PASSWORD)"
            )))
        }
        Err(e) => Err(configuration(format!(
            "the '{label}' block in {PATH_VAR} is not valid PEM ({e}); check that the file is an unmodified PEM file"
        ))),
    }
}

/// The RSA key from its block, decrypting it when it is encrypted.
fn load_key(block: KeyBlock, password: Option<&Secret>) -> Result<PrivateKey, Error> {
    match block {
        KeyBlock::Pkcs1(der) => {
            PrivateKey::from_pkcs1_der(&der).map_err(|_| invalid_key("RSA PRIVATE KEY"))
        }
        KeyBlock::Pkcs8(der) => from_pkcs8(&der, "PRIVATE KEY"),
        KeyBlock::Encrypted(der) => {
            let Some(password) = password.filter(|p| !p.0.is_empty()) else {
                return Err(configuration(format!(
                    "the private key in {PATH_VAR} is encrypted ('ENCRYPTED PRIVATE KEY'); set AZURE_CLIENT_CERTIFICATE_PASSWORD to its password"
                )));
            };
            let info =
                EncryptedPrivateKeyInfoRef::from_der(&der).map_err(|_| unsupported_encryption())?;
            let plain = info.decrypt(password.0.as_bytes()).map_err(|e| match e {
                pkcs8::Error::EncryptedPrivateKey(
                    pkcs5::Error::UnsupportedAlgorithm { .. }
                    | pkcs5::Error::NoPbes1CryptSupport
                    | pkcs5::Error::AlgorithmParametersInvalid { .. },
                ) => unsupported_encryption(),
                _ => wrong_password(),
            })?;
            // A wrong password can decrypt to garbage with valid padding: say so then too.
            from_pkcs8(plain.as_bytes(), "ENCRYPTED PRIVATE KEY").map_err(|_| wrong_password())
        }
    }
}

/// A PKCS#8 key, refused unless its algorithm is `rsaEncryption`.
fn from_pkcs8(der: &[u8], label: &str) -> Result<PrivateKey, Error> {
    let info = PrivateKeyInfoRef::from_der(der).map_err(|_| invalid_key(label))?;
    let oid = info.algorithm.oid;
    if oid != rsa::pkcs1::ALGORITHM_OID {
        return Err(not_rsa(&format!("an {} key", algorithm_name(oid))));
    }
    PrivateKey::try_from(info).map_err(|_| invalid_key(label))
}

/// A readable name for the key algorithms people have.
fn algorithm_name(oid: ObjectIdentifier) -> &'static str {
    match oid.to_string().as_str() {
        "1.2.840.10045.2.1" => "EC",
        "1.3.101.112" => "Ed25519",
        "1.3.101.113" => "Ed448",
        "1.2.840.10040.4.1" => "DSA",
        "1.2.840.113549.1.1.10" => "RSASSA-PSS-only",
        _ => "non-RSA",
    }
}

/// The certificates, the one whose public key is the private key's first (MSAL Go's rule).
fn signing_first(key: &PrivateKey, mut certificates: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>, Error> {
    let public = key.to_public_key();
    let mut signing = None;
    for (index, der) in certificates.iter().enumerate() {
        let certificate = Certificate::from_der(der).map_err(|e| {
            configuration(format!(
                "certificate {} in {PATH_VAR} is not a valid X.509 certificate ({e}); re-export it from its source",
                index + 1
            ))
        })?;
        let spki = certificate
            .tbs_certificate()
            .subject_public_key_info()
            .to_der();
        let matches = spki
            .ok()
            .and_then(|spki: Vec<u8>| rsa::PublicKey::from_public_key_der(&spki).ok())
            .is_some_and(|candidate| candidate == public);
        if matches && signing.is_none() {
            signing = Some(index);
        }
    }
    let index = signing.ok_or_else(|| {
        configuration(format!(
            "no certificate in {PATH_VAR} matches its private key; put the client certificate of this key in the file (check that the key and the certificate come from the same export)"
        ))
    })?;
    let first = certificates.remove(index);
    certificates.insert(0, first);
    Ok(certificates)
}

fn not_rsa(what: &str) -> Error {
    configuration(format!(
        "the private key in {PATH_VAR} is {what}, not RSA; azmi signs the client assertion with PS256, which needs an RSA key: create the certificate with an RSA key (2048 bits or more)"
    ))
}

/// The decoder's own error is left out: it can quote a byte of the key.
fn invalid_key(label: &str) -> Error {
    configuration(format!(
        "the '{label}' block in {PATH_VAR} is not a valid RSA private key; re-export the key"
    ))
}

/// An encryption scheme `pkcs5` does not decrypt (PBES1, PKCS#12 PBE, PBKDF2-HMAC-SHA1, 3DES),
/// or an encrypted key too damaged to tell.
fn unsupported_encryption() -> Error {
    configuration(format!(
        "the private key in {PATH_VAR} is encrypted with a scheme azmi does not read (it reads PBES2: AES-CBC with PBKDF2-HMAC-SHA256 or scrypt, OpenSSL's default); re-encrypt it with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in key.pem -out key-aes.pem` and set AZURE_CLIENT_CERTIFICATE_PASSWORD to the new password"
    ))
}

fn wrong_password() -> Error {
    configuration(format!(
        "the private key in {PATH_VAR} could not be decrypted with AZURE_CLIENT_CERTIFICATE_PASSWORD; check the password"
    ))
}

/// Where `needle` first occurs in `haystack` at or after `from`.
fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|at| from + at)
}
