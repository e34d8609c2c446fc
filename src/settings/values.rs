//! Parsers for settings' values: each gives the typed value or the reason, a sentence ending with
//! what was given, for `Problems::check` to put after the setting's names.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::Secret;

/// A whole number within `min..=max`.
pub fn whole_number(text: &str, min: u64, max: u64) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(value) if (min..=max).contains(&value) => Ok(value),
        _ => Err(format!(
            "must be a whole number from {min} to {max}, got {text:?}"
        )),
    }
}

/// An http(s) URL without a trailing slash (one is removed).
pub fn public_url(text: &str) -> Result<String, String> {
    let url = text.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => Ok(url.to_owned()),
        _ => Err(format!(
            "must be an http:// or https:// URL such as https://crier.example.com, got {text:?}"
        )),
    }
}

/// One of a fixed set of lower-case words (case-insensitive).
pub fn one_of<T: Copy>(text: &str, choices: &[(&str, T)]) -> Result<T, String> {
    let wanted = text.trim().to_ascii_lowercase();
    choices
        .iter()
        .find(|(word, _)| *word == wanted)
        .map(|(_, value)| *value)
        .ok_or_else(|| {
            let words: Vec<&str> = choices.iter().map(|(word, _)| *word).collect();
            format!("must be one of {}; got {text:?}", words.join(", "))
        })
}

pub fn socket_addr(text: &str) -> Result<SocketAddr, String> {
    text.trim().parse().map_err(|_| {
        format!("must be IP:PORT such as 127.0.0.1:8080 or 0.0.0.0:8080, got {text:?}")
    })
}

pub fn non_empty_path(text: &str) -> Result<PathBuf, String> {
    if text.trim().is_empty() {
        Err("must not be empty".to_owned())
    } else {
        Ok(PathBuf::from(text))
    }
}

/// An optional setting's text, trimmed; blank counts as not given (`CRIER_X=` in a unit file).
pub fn optional_text(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(str::to_owned)
}

/// An optional secret, trimmed; blank counts as not given.
pub fn optional_secret(value: &Option<String>) -> Option<Secret> {
    optional_text(value).map(Secret::new)
}
