//! The certificate client assertion: the contents of `AZURE_CLIENT_CERTIFICATE_PATH` turned
//! into a signed JWT that Entra ID accepts in place of a client secret.
//!
//! An application registered with a certificate proves who it is to Entra's v2 token endpoint
//! with an RFC 7523 client assertion (`client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`),
//! the same request as workload identity ([`crate::proto::workload`]) except that the
//! assertion is signed here with the certificate's private key. [`client_assertion`] is the
//! whole job; the host reads the file, the caller supplies the clock and fresh random bytes.
//!
//! # The file
//!
//! | input | rule | public precedent |
//! |---|---|---|
//! | PEM text | the `CERTIFICATE` and private-key blocks; any text between blocks (OpenSSL's `Bag Attributes`) is ignored | @azure/identity and MSAL Go read PEM |
//! | `PRIVATE KEY` | PKCS#8, must be `rsaEncryption` | @azure/identity (Node `createPrivateKey`), MSAL Go `ParseCertificates` |
//! | `RSA PRIVATE KEY` | PKCS#1 | same |
//! | `ENCRYPTED PRIVATE KEY` | PKCS#8 PBES2 (PBKDF2 or scrypt, AES-CBC), decrypted with `AZURE_CLIENT_CERTIFICATE_PASSWORD`; without a password, or with a wrong one, a configuration error naming that variable | @azure/identity (a passphrase decrypts the PEM key); MSAL Go reads no encrypted PEM |
//! | other key encryption (PBES1, PKCS#12 PBE, PBKDF2-HMAC-SHA1, 3DES) | refused, with the `openssl pkcs8 -topk8 -v2 aes-256-cbc` command that re-encrypts it: these need `pkcs5`'s `sha1-insecure`/`3des` features, and OpenSSL 1.1+ never writes them by default | — |
//! | legacy encrypted PEM (`Proc-Type: 4,ENCRYPTED`) | refused, with the `openssl pkcs8 -topk8` command that converts it | — |
//! | a password with an unencrypted key | ignored | @azure/identity (Node ignores a passphrase for a clear key) |
//! | any other key (EC, Ed25519, DSA, …) | refused: PS256 needs RSA | MSAL Go "key must be an RSA key"; azure-identity Python requires RSA |
//! | key size | 1024 to 8192 bits (the `rsa` crate's limits; Entra wants 2048 or more) | — |
//! | not PEM (PKCS#12 `.pfx`) | refused, with the `openssl pkcs12 … -nodes` command that converts it | @azure/identity reads PEM only |
//! | no key, two keys, no certificate | refused, naming `AZURE_CLIENT_CERTIFICATE_PATH` | MSAL Go |
//! | the signing certificate | the first certificate whose public key is the private key's; none → refused | MSAL Go ("key doesn't match any certificate"); @azure/identity takes the first certificate, which is wrong when a file lists the CA first |
//!
//! PKCS#12 is not read: the pure-Rust readers are a pre-release (RustCrypto `pkcs12`
//! 0.2.0-pre, which decodes the structures but does not decrypt) or a single-maintainer crate
//! (`p12-keystore`) that pulls pre-release `cms`/`pkcs12`, a second X.509 parser and `rand`
//! with an OS RNG into a core that takes its randomness as an argument; and `.pfx` files from
//! OpenSSL 1.x and older Windows exports use RC2 or 3DES, which would have to be enabled for
//! them. OpenSSL converts one in a command.
//!
//! # The assertion
//!
//! A compact JWS (RFC 7515 §7.1), as msal-node builds it, with MSAL Go's certificate order:
//!
//! ```text
//! header {"alg":"PS256","typ":"JWT","x5t#S256":"<base64url SHA-256 of the certificate DER, no '='>"
//!         [,"x5c":["<base64 DER of the signing certificate>","<the others, file order>"]]}
//! claims {"aud":"<token URL>","exp":<now+600>,"iss":"<client id>","jti":"<v4 GUID>",
//!         "nbf":<now>,"sub":"<client id>","iat":<now>}
//! ```
//!
//! * `PS256` is RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt (RFC 7518 §3.5;
//!   msal-node signs with `RSA_PSS_SALTLEN_DIGEST`), by RustCrypto's `rsa` 0.10 (constant-time
//!   `crypto-bigint` arithmetic, blinded; 0.9 is open to the Marvin timing attack,
//!   RUSTSEC-2023-0071).
//! * `x5t#S256` (RFC 7515 §4.1.8) is the SHA-256 thumbprint, unpadded base64url as RFC 7515
//!   requires, as msal-node sends it (MSAL Go sends padded standard base64; Entra accepts
//!   what both SDKs send). SHA-1 `x5t` with RS256 is the deprecated form and is not offered.
//! * `x5c` (RFC 7515 §4.1.6: standard base64 of DER, the signing certificate first) is sent
//!   only when `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN` is `1` or `true` in any case
//!   ([`send_certificate_chain`]: @azure/identity lower-cases the value and compares it with
//!   `true` and `1`, without trimming). It is for applications that trust a subject name and
//!   issuer instead of a thumbprint.
//! * `aud` is the exact token URL the assertion is posted to
//!   (`https://{authority}/{tenant}/oauth2/v2.0/token`), `iss` = `sub` = the client id
//!   (RFC 7523 §3), `jti` a fresh version-4 GUID, `nbf` = `iat` = now and `exp` = now + 600
//!   (msal-node's and MSAL Python's 10 minutes), all integers. Call it for every token
//!   request, with fresh random bytes (MSAL Go signs a new assertion per request): a kept
//!   assertion can be sent near its expiry, and a reused `jti` can be refused as a replay.
//!
//! # No I/O, and no secret shown
//!
//! The file's bytes, the clock (`now_secs`) and randomness (16 bytes for `jti`, a 32-byte
//! seed from which ChaCha20 draws the PSS salt and the RSA blinding factor) come in as
//! arguments. The password and the assertion are [`Secret`]s, [`CertificateInput`]'s `Debug`
//! shows only the file's length, and no error message quotes the file, the key or the
//! password.

mod jws;
mod pem;

#[cfg(test)]
mod tests;

use super::error::{Error, ErrorKind};
use super::secret::Secret;

/// The variable naming the certificate file, as messages name it.
pub(crate) const PATH_VAR: &str = "AZURE_CLIENT_CERTIFICATE_PATH";
/// Largest certificate file accepted: a PEM with a 4096-bit key and a few chain certificates
/// is under 16 KB. The host reads at most this much; a larger file is refused.
pub(crate) const CERTIFICATE_MAX_BYTES: usize = 256 * 1024;
/// The assertion's lifetime: `exp` = `iat` + 600 s (msal-node, MSAL Python).
pub(crate) const ASSERTION_LIFETIME_SECS: u64 = 600;
/// How to turn a PKCS#12 file into the PEM azmi reads.
const PKCS12_FIX: &str = "azmi reads PEM only: convert it with `openssl pkcs12 -in cert.pfx -out cert.pem -nodes` (it asks for the .pfx password) and point AZURE_CLIENT_CERTIFICATE_PATH at cert.pem";

/// Everything [`client_assertion`] needs; nothing is read from elsewhere.
pub(crate) struct CertificateInput<'a> {
    /// The bytes of the file named by `AZURE_CLIENT_CERTIFICATE_PATH`.
    pub(crate) file: &'a [u8],
    /// `AZURE_CLIENT_CERTIFICATE_PASSWORD`, when set: decrypts an `ENCRYPTED PRIVATE KEY`.
    pub(crate) password: Option<&'a Secret>,
    /// The application (client) id: `iss` and `sub`.
    pub(crate) client_id: &'a str,
    /// The exact token URL the assertion is posted to: `aud`.
    pub(crate) audience: &'a str,
    /// Now, in seconds since the Unix epoch: `nbf`, `iat`, and `exp` − 600.
    pub(crate) now_secs: u64,
    /// Fresh random bytes for the `jti` GUID: new for every call (a repeated `jti` is a
    /// replay).
    pub(crate) jti_random: [u8; 16],
    /// Fresh random bytes seeding the signer's salt and blinding: new for every call, never
    /// derived from the clock or the `jti` bytes.
    pub(crate) signer_seed: [u8; 32],
    /// `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN` ([`send_certificate_chain`]): add `x5c`.
    pub(crate) send_chain: bool,
}

impl core::fmt::Debug for CertificateInput<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CertificateInput")
            .field(
                "file",
                &format_args!("<{} bytes redacted>", self.file.len()),
            )
            .field("password", &self.password)
            .field("client_id", &self.client_id)
            .field("audience", &self.audience)
            .field("now_secs", &self.now_secs)
            .field("send_chain", &self.send_chain)
            .finish_non_exhaustive()
    }
}

/// The signed client assertion (compact JWS) for `input`, or a
/// [`ErrorKind::Configuration`] error naming `AZURE_CLIENT_CERTIFICATE_PATH` (or
/// `AZURE_CLIENT_CERTIFICATE_PASSWORD`) and the fix when the file cannot be used: not PEM,
/// no key, no certificate, a non-RSA key, an encrypted key without the right password, no
/// certificate matching the key. The rules are in the module docs.
pub(crate) fn client_assertion(input: &CertificateInput<'_>) -> Result<Secret, Error> {
    if input.file.len() > CERTIFICATE_MAX_BYTES {
        return Err(configuration(format!(
            "{PATH_VAR} names a file of {} bytes, more than the {CERTIFICATE_MAX_BYTES} a certificate and its key need; point it at the PEM file holding the client certificate and its private key",
            input.file.len()
        )));
    }
    let parsed = pem::parse(input.file, input.password)?;
    jws::sign(input, parsed)
}

/// `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN`: true only for `1` or `true` in any case
/// (@azure/identity's reading; MSAL Go takes only lower-case `true`, Python any non-empty value). Unset, empty or
/// anything else is false.
pub(crate) fn send_certificate_chain(value: Option<&str>) -> bool {
    value.is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// A present-but-unusable certificate configuration: stops a credential chain.
fn configuration(message: String) -> Error {
    Error::new(
        ErrorKind::Configuration,
        None,
        format!("client certificate: {message}"),
    )
}
