//! DKIM signatures (RFC 6376) on the email the smtp provider sends, with `ring` and nothing
//! else: `relaxed/relaxed` canonicalisation, SHA-256, an RSA key (`rsa-sha256`, what every
//! receiver checks) or an Ed25519 one (`ed25519-sha256`, RFC 8463) read from a PEM file.
//!
//! Why not lettre's `dkim` feature: it brings the `rsa` crate (an open advisory, RUSTSEC-2023-0071,
//! that `cargo deny` refuses) and a second elliptic-curve stack, while `ring` — already here for
//! TLS and HMAC — signs both kinds. ring does not generate RSA keys, so the key is made once
//! by the operator (`openssl genpkey`, README "Deliverability") and imported; crier prints the
//! DNS record to publish for it.

use std::sync::Arc;

use lettre::message::Mailbox;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::digest;

use crate::delivery::settings::DkimSettings;
use ring::rand::SecureRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};

/// The headers signed when the message has them (lower-case; each at most once in crier's
/// messages). `From` is required by RFC 6376 and always present.
const SIGNED_HEADERS: &[&str] = &[
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "x-crier-message-id",
];

enum SigningKey {
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// One domain's signing key under one selector.
pub struct DkimSigner {
    domain: String,
    selector: String,
    key: SigningKey,
    /// RSA signatures are blinded with random bytes (ring needs its own generator).
    random: Arc<dyn SecureRandom + Send + Sync>,
}

impl std::fmt::Debug for DkimSigner {
    /// Never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimSigner")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .finish_non_exhaustive()
    }
}

/// The DER bytes of the first PEM block of `pem`, and its label (`PRIVATE KEY`, …).
fn pem_block(pem: &str) -> Result<(String, Vec<u8>), String> {
    let start = pem
        .find("-----BEGIN ")
        .ok_or("the key file holds no PEM block (-----BEGIN …-----)".to_owned())?;
    let rest = &pem[start + "-----BEGIN ".len()..];
    let label_end = rest
        .find("-----")
        .ok_or("a PEM block without its label".to_owned())?;
    let label = rest[..label_end].to_owned();
    let body = &rest[label_end + 5..];
    let end = body
        .find("-----END ")
        .ok_or("a PEM block without its -----END line".to_owned())?;
    let text: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
    let der = BASE64
        .decode(text)
        .map_err(|_| "the PEM block is not base64".to_owned())?;
    Ok((label, der))
}

/// DER length octets.
fn der_length(length: usize) -> Vec<u8> {
    if length < 0x80 {
        return vec![length as u8];
    }
    let bytes: Vec<u8> = length
        .to_be_bytes()
        .into_iter()
        .skip_while(|&b| b == 0)
        .collect();
    let mut out = vec![0x80 | bytes.len() as u8];
    out.extend(bytes);
    out
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_length(content.len()));
    out.extend_from_slice(content);
    out
}

/// An RSA public key (PKCS#1 `RSAPublicKey`, what ring gives) as the SubjectPublicKeyInfo DNS
/// records carry.
fn rsa_subject_public_key_info(pkcs1: &[u8]) -> Vec<u8> {
    // rsaEncryption (1.2.840.113549.1.1.1) with NULL parameters.
    const ALGORITHM: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bits = vec![0u8];
    bits.extend_from_slice(pkcs1);
    let mut content = ALGORITHM.to_vec();
    content.extend(der(0x03, &bits));
    der(0x30, &content)
}

impl DkimSigner {
    /// The key of a PEM file: `PRIVATE KEY` (PKCS#8, RSA or Ed25519) or `RSA PRIVATE KEY`
    /// (PKCS#1). `domain` is the `d=` tag (the From domain), `selector` the `s=` tag.
    pub fn from_pem(
        pem: &str,
        domain: &str,
        selector: &str,
        random: Arc<dyn SecureRandom + Send + Sync>,
    ) -> Result<DkimSigner, String> {
        let (label, der) = pem_block(pem)?;
        let key = match label.as_str() {
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der)
                .map(SigningKey::Rsa)
                .map_err(|error| format!("not a usable RSA key ({error})"))?,
            "PRIVATE KEY" => match RsaKeyPair::from_pkcs8(&der) {
                Ok(key) => SigningKey::Rsa(key),
                Err(rsa_error) => Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
                    .map(SigningKey::Ed25519)
                    .map_err(|_| {
                        format!("neither a usable RSA key ({rsa_error}) nor an Ed25519 key")
                    })?,
            },
            other => {
                return Err(format!(
                    "a PEM block {other:?}; expected PRIVATE KEY or RSA PRIVATE KEY"
                ));
            }
        };
        if let SigningKey::Rsa(key) = &key
            && key.public().modulus_len() < 128
        {
            return Err("an RSA key shorter than 1024 bits; use 2048".to_owned());
        }
        Ok(DkimSigner {
            domain: domain.to_ascii_lowercase(),
            selector: selector.to_owned(),
            key,
            random,
        })
    }

    /// The key of `settings.key_file` for the domain of the `email_from` mailbox (the `d=`
    /// tag: DMARC wants the From domain). Fails with a sentence naming the file.
    pub fn load(settings: &DkimSettings, email_from: &str) -> Result<DkimSigner, String> {
        let from: Mailbox = email_from
            .parse()
            .map_err(|error| format!("DKIM needs a valid From mailbox ({error})"))?;
        let pem = std::fs::read_to_string(&settings.key_file).map_err(|error| {
            format!(
                "the DKIM key file {} cannot be read: {error}",
                settings.key_file.display()
            )
        })?;
        DkimSigner::from_pem(
            &pem,
            from.email.domain(),
            &settings.selector,
            crate::ids::signing_random(),
        )
        .map_err(|why| format!("the DKIM key file {}: {why}", settings.key_file.display()))
    }

    /// A new Ed25519 key (RFC 8463) from ring's generator, as a PKCS#8 `PRIVATE KEY` PEM that
    /// `from_pem` reads back. ring makes no RSA keys: an RSA key is made elsewhere and imported.
    pub fn generate_ed25519_pem(random: &dyn SecureRandom) -> Result<String, String> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(random)
            .map_err(|_| "the random generator failed".to_owned())?;
        let body = BASE64.encode(pkcs8.as_ref());
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|chunk| std::str::from_utf8(chunk).unwrap_or_default())
            .collect();
        Ok(format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        ))
    }

    /// The `a=` tag this key signs with: `rsa-sha256` or `ed25519-sha256`.
    pub fn algorithm(&self) -> &'static str {
        match self.key {
            SigningKey::Rsa(_) => "rsa-sha256",
            SigningKey::Ed25519(_) => "ed25519-sha256",
        }
    }

    /// Where the public key is published: `{selector}._domainkey.{domain}`.
    pub fn record_name(&self) -> String {
        format!("{}._domainkey.{}", self.selector, self.domain)
    }

    /// The TXT record to publish there: `v=DKIM1; k=rsa; p=…` (or `k=ed25519`).
    pub fn record(&self) -> String {
        let (kind, public) = match &self.key {
            SigningKey::Rsa(key) => (
                "rsa",
                rsa_subject_public_key_info(key.public_key().as_ref()),
            ),
            SigningKey::Ed25519(key) => ("ed25519", key.public_key().as_ref().to_vec()),
        };
        format!("v=DKIM1; k={kind}; p={}", BASE64.encode(public))
    }

    /// The `DKIM-Signature` header field (folded, ending in CRLF) for `message`: the whole
    /// message as sent, CRLF line ends, before dot-stuffing.
    pub fn sign(&self, message: &[u8]) -> Result<String, String> {
        let text = String::from_utf8_lossy(message);
        let (head, body) = match text.find("\r\n\r\n") {
            Some(at) => (&text[..at + 2], &text[at + 4..]),
            None => (&text[..], ""),
        };
        let fields = header_fields(head);
        let mut names = Vec::new();
        let mut hashed = String::new();
        for wanted in SIGNED_HEADERS {
            if let Some((name, value)) = fields
                .iter()
                .rev()
                .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
            {
                hashed.push_str(&relaxed_header(name, value));
                names.push(*wanted);
            }
        }
        if !names.contains(&"from") {
            return Err("the message has no From header".to_owned());
        }
        let body_hash = BASE64.encode(digest::digest(
            &digest::SHA256,
            relaxed_body(body).as_bytes(),
        ));
        let algorithm = self.algorithm();
        let unsigned = format!(
            "v=1; a={algorithm}; c=relaxed/relaxed; d={}; s={};\r\n\th={};\r\n\tbh={body_hash};\r\n\tb=",
            self.domain,
            self.selector,
            names.join(":"),
        );
        let own = relaxed_header("DKIM-Signature", &unsigned);
        hashed.push_str(own.trim_end_matches("\r\n"));
        let signature = match &self.key {
            SigningKey::Rsa(key) => {
                let mut signature = vec![0; key.public().modulus_len()];
                key.sign(
                    &RSA_PKCS1_SHA256,
                    self.random.as_ref(),
                    hashed.as_bytes(),
                    &mut signature,
                )
                .map_err(|_| "the RSA signature failed".to_owned())?;
                signature
            }
            SigningKey::Ed25519(key) => {
                // RFC 8463: the Ed25519 signature is over the SHA-256 of the signed data.
                let prehash = digest::digest(&digest::SHA256, hashed.as_bytes());
                key.sign(prehash.as_ref()).as_ref().to_vec()
            }
        };
        let b = BASE64.encode(signature);
        // Fold the signature every 72 characters; whitespace inside b= is ignored.
        let folded: Vec<&str> = b
            .as_bytes()
            .chunks(72)
            .map(|chunk| std::str::from_utf8(chunk).unwrap_or_default())
            .collect();
        Ok(format!(
            "DKIM-Signature: {unsigned}{}\r\n",
            folded.join("\r\n\t ")
        ))
    }
}

/// The header fields of `head` (CRLF line ends), unfolded: (name, raw value with its folds).
fn header_fields(head: &str) -> Vec<(&str, &str)> {
    let mut fields: Vec<(usize, usize)> = Vec::new();
    let mut at = 0;
    for line in head.split_inclusive("\r\n") {
        let continuation = line.starts_with(' ') || line.starts_with('\t');
        match fields.last_mut() {
            Some(last) if continuation => last.1 = at + line.len(),
            _ => fields.push((at, at + line.len())),
        }
        at += line.len();
    }
    fields
        .into_iter()
        .filter_map(|(start, end)| {
            let field = &head[start..end];
            let colon = field.find(':')?;
            Some((&field[..colon], &field[colon + 1..]))
        })
        .collect()
}

/// Collapses runs of spaces and tabs (and, unfolded, line breaks) into one space.
fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_space = false;
    for c in text.chars() {
        if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
            in_space = true;
        } else {
            if in_space && !out.is_empty() {
                out.push(' ');
            }
            in_space = false;
            out.push(c);
        }
    }
    out
}

/// RFC 6376 3.4.2: lower-case name, unfolded value, runs of whitespace as one space, none
/// around the colon or at the end; `name:value\r\n`.
fn relaxed_header(name: &str, value: &str) -> String {
    format!(
        "{}:{}\r\n",
        name.trim().to_ascii_lowercase(),
        collapse_whitespace(value)
    )
}

/// RFC 6376 3.4.4: per line, runs of whitespace as one space and none at the end; no empty
/// lines at the end; a non-empty body ends with CRLF.
fn relaxed_body(body: &str) -> String {
    let mut lines: Vec<String> = body
        .split("\r\n")
        .map(|line| {
            let mut out = String::with_capacity(line.len());
            let mut in_space = false;
            for c in line.chars() {
                if c == ' ' || c == '\t' {
                    in_space = true;
                } else {
                    if in_space {
                        out.push(' ');
                    }
                    in_space = false;
                    out.push(c);
                }
            }
            out
        })
        .collect();
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    if lines.is_empty() {
        return String::new();
    }
    let mut out = lines.join("\r\n");
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_bodies_are_canonicalised_relaxed() {
        assert_eq!(
            relaxed_header("Subject", " Hello \r\n\t  world \r\n"),
            "subject:Hello world\r\n"
        );
        // RFC 6376 3.4.6's example.
        assert_eq!(relaxed_header("A", " X\r\n"), "a:X\r\n");
        assert_eq!(relaxed_header("B ", " Y\t\r\n\tZ  \r\n"), "b:Y Z\r\n");
        assert_eq!(relaxed_body(" C \r\nD \t E\r\n\r\n\r\n"), " C\r\nD E\r\n");
        assert_eq!(relaxed_body("\r\n\r\n"), "");
        assert_eq!(relaxed_body("x"), "x\r\n");
        let head = "From: a@b.c\r\nSubject: one\r\n two\r\nTo: d@e.f\r\n";
        assert_eq!(
            header_fields(head),
            vec![
                ("From", " a@b.c\r\n"),
                ("Subject", " one\r\n two\r\n"),
                ("To", " d@e.f\r\n")
            ]
        );
    }

    #[test]
    fn a_generated_ed25519_key_reads_back_and_signs() {
        let random = crate::ids::signing_random();
        let pem = DkimSigner::generate_ed25519_pem(random.as_ref()).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
        let signer = DkimSigner::from_pem(&pem, "Acme.Example", "crier2026", random).unwrap();
        assert_eq!(signer.algorithm(), "ed25519-sha256");
        assert_eq!(signer.record_name(), "crier2026._domainkey.acme.example");
        assert!(signer.record().starts_with("v=DKIM1; k=ed25519; p="));
        let header = signer
            .sign(b"From: a@acme.example\r\nSubject: x\r\n\r\nHello\r\n")
            .unwrap();
        assert!(
            header.contains("a=ed25519-sha256; c=relaxed/relaxed; d=acme.example; s=crier2026;")
        );
    }

    #[test]
    fn an_rsa_public_key_is_wrapped_as_subject_public_key_info() {
        assert_eq!(der_length(5), vec![5]);
        assert_eq!(der_length(270), vec![0x82, 0x01, 0x0e]);
        let info = rsa_subject_public_key_info(&[0x30, 0x00]);
        assert_eq!(
            info,
            [
                &[0x30, 0x14][..],
                &[
                    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01
                ],
                &[0x01, 0x05, 0x00, 0x03, 0x03, 0x00, 0x30, 0x00],
            ]
            .concat()
        );
    }
}
