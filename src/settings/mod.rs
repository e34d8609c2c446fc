//! What every group of settings is built from: a setting's two names, the one clap attribute
//! that makes a field a setting, and the problems validation collects.
//!
//! Each area owns its settings as a clap `Args` struct — `config::ServerArgs`,
//! `delivery::settings::DeliveryArgs`, `payments::settings::PaymentArgs` — which `cli::Settings`
//! gathers, and types them itself with `validate`. Values stay strings until then: clap would
//! stop at the first bad value, validation reports every problem at once.
//!
//! A new setting is a const naming it, a field, its check in `validate`, and its README row:
//!
//! ```text
//! const WORKERS: Setting = Setting::new("workers", "CRIER_WORKERS");
//!
//!     /// HTTP worker threads: how many requests are served at once.
//!     #[arg(crier_setting = WORKERS, default_value = "8")]
//!     pub workers: String,
//! ```
//!
//! and validation names it with the same const: `problems.check(WORKERS, …)`.

mod secret;
pub mod values;

use std::fmt;

use clap::Arg;

pub use secret::Secret;

/// A setting's names: the flag `--{long}` and the environment variable `env`.
///
/// Its `Display` is how problems name it: `--workers / CRIER_WORKERS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub long: &'static str,
    pub env: &'static str,
}

impl Setting {
    /// Names a setting. The variable is always the flag in capitals with `_` for `-`, after
    /// `CRIER_`; a pair that is not fails to compile (the check runs when the constant is built).
    pub const fn new(long: &'static str, env: &'static str) -> Setting {
        assert!(
            variable_matches_flag(long, env),
            "a setting's variable must be CRIER_ and its flag in capitals, `_` for `-`"
        );
        Setting { long, env }
    }

    /// The flag as typed: `--workers`.
    pub fn flag(self) -> String {
        format!("--{}", self.long)
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "--{} / {}", self.long, self.env)
    }
}

const fn variable_matches_flag(long: &str, env: &str) -> bool {
    const PREFIX: &[u8] = b"CRIER_";
    let (long, env) = (long.as_bytes(), env.as_bytes());
    if long.is_empty() || env.len() != PREFIX.len() + long.len() {
        return false;
    }
    let mut i = 0;
    while i < PREFIX.len() {
        if env[i] != PREFIX[i] {
            return false;
        }
        i += 1;
    }
    let mut i = 0;
    while i < long.len() {
        let expected = match long[i] {
            b'-' => b'_',
            other => other.to_ascii_uppercase(),
        };
        if env[PREFIX.len() + i] != expected {
            return false;
        }
        i += 1;
    }
    true
}

/// The clap attribute every setting carries instead of four: `#[arg(crier_setting = NAME)]`.
///
/// clap's derive turns an unknown attribute `name = value` into a call `.name(value)` on the
/// `Arg`, so this trait must be in scope where a settings struct is declared.
pub trait SettingArg {
    fn crier_setting(self, setting: Setting) -> Self;
}

impl SettingArg for Arg {
    fn crier_setting(self, setting: Setting) -> Arg {
        self.long(setting.long)
            .env(setting.env)
            // `--help` must never print a secret it found in the environment.
            .hide_env_values(true)
    }
}

/// Problems found while validating, one sentence each, in the order the settings were checked.
#[derive(Debug, Default)]
pub struct Problems(Vec<String>);

impl Problems {
    /// Keeps a valid value, or records `"{setting}: {reason}"` and gives `None`.
    pub fn check<T>(&mut self, setting: Setting, value: Result<T, String>) -> Option<T> {
        value
            .map_err(|reason| self.0.push(format!("{setting}: {reason}")))
            .ok()
    }

    /// Records a problem that is not one setting's bad value (a missing pair, a conflict).
    pub fn add(&mut self, sentence: String) {
        self.0.push(sentence);
    }

    /// Takes in another group's problems; gives its settings if it had none.
    pub fn absorb<T>(&mut self, validated: Result<T, Vec<String>>) -> Option<T> {
        validated.map_err(|problems| self.0.extend(problems)).ok()
    }

    /// The typed settings when nothing was wrong, every problem otherwise.
    pub fn finish<T>(self, settings: Option<T>) -> Result<T, Vec<String>> {
        match settings {
            Some(settings) if self.0.is_empty() => Ok(settings),
            _ => Err(self.0),
        }
    }
}

/// A settings struct filled with its declared defaults only, whatever the environment holds:
/// tests start from this and change what they test, and a workspace's provider account is
/// validated from it (`delivery::settings::account_settings`).
pub(crate) fn declared_defaults<A: clap::Args + clap::FromArgMatches>() -> Result<A, String> {
    let command = A::augment_args(clap::Command::new("defaults"))
        .mut_args(|arg| arg.env(clap::builder::Resettable::Reset));
    let matches = command
        .try_get_matches_from(["defaults"])
        .map_err(|err| err.to_string())?;
    A::from_arg_matches(&matches).map_err(|err| err.to_string())
}

/// `declared_defaults`, for tests.
#[cfg(test)]
pub(crate) fn defaults<A: clap::Args + clap::FromArgMatches>() -> A {
    declared_defaults().unwrap_or_else(|err| panic!("{err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_is_named_by_its_flag_and_variable() {
        const WORKERS: Setting = Setting::new("workers", "CRIER_WORKERS");
        assert_eq!(WORKERS.to_string(), "--workers / CRIER_WORKERS");
        assert_eq!(WORKERS.flag(), "--workers");
    }

    #[test]
    fn the_variable_is_the_flag_in_capitals() {
        assert!(variable_matches_flag("db-pool-size", "CRIER_DB_POOL_SIZE"));
        assert!(!variable_matches_flag("db-pool-size", "CRIER_DB_POOLSIZE"));
        assert!(!variable_matches_flag("db-pool-size", "DB_POOL_SIZE"));
        assert!(!variable_matches_flag("workers", "CRIER_WORKERS_"));
        assert!(!variable_matches_flag("", "CRIER_"));
    }

    #[test]
    fn problems_keep_their_order_and_finish_only_when_empty() {
        const ADDR: Setting = Setting::new("addr", "CRIER_ADDR");
        let mut problems = Problems::default();
        assert_eq!(problems.check(ADDR, Ok::<_, String>(1)), Some(1));
        assert_eq!(problems.check(ADDR, Err::<u8, _>("bad".into())), None);
        problems.absorb(Err::<(), _>(vec!["later".to_owned()]));
        assert_eq!(
            problems.finish(Some(())),
            Err(vec![
                "--addr / CRIER_ADDR: bad".to_owned(),
                "later".to_owned()
            ])
        );
        assert_eq!(Problems::default().finish(Some(7)), Ok(7));
    }
}
