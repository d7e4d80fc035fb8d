//! The password that protects a private key: from the environment or a terminal prompt.

use std::io::IsTerminal as _;

use zeroize::Zeroizing;

use super::error::SigningError;

/// The environment variable Gatehouse reads the signing password from.
pub const PASSWORD_ENV: &str = "GATEHOUSE_SIGNING_PASSWORD";
/// cosign's variable, accepted too (Gatehouse's own wins when both are set).
pub const COSIGN_PASSWORD_ENV: &str = "COSIGN_PASSWORD";

/// A password. `Debug` prints nothing of it, and its bytes are zeroed on drop.
pub struct Password(pub(crate) Zeroizing<String>);

/// Whether a prompt asks twice (for a new key) or once (to use a key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prompt {
    /// Ask once.
    Once,
    /// Ask twice and require the same answer, and refuse an empty password.
    Confirm,
}

impl Password {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Self {
        Self(Zeroizing::new(password.into()))
    }

    /// The password's bytes, for the key derivation.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The password from `GATEHOUSE_SIGNING_PASSWORD`, else `COSIGN_PASSWORD` (set but empty
    /// counts as an empty password, as in cosign), else, when stdin is a terminal, from a
    /// prompt on the terminal. Fails when none of these is available.
    pub fn from_env_or_prompt(prompt: Prompt) -> Result<Self, SigningError> {
        let from_env = std::env::var(PASSWORD_ENV)
            .ok()
            .or_else(|| std::env::var(COSIGN_PASSWORD_ENV).ok());
        let password = match from_env {
            Some(p) => Self::new(p),
            None if std::io::stdin().is_terminal() => Self::ask(prompt)?,
            None => return Err(SigningError::NoPassword),
        };
        if prompt == Prompt::Confirm && password.0.is_empty() {
            return Err(SigningError::EmptyPassword);
        }
        Ok(password)
    }

    fn ask(prompt: Prompt) -> Result<Self, SigningError> {
        let read = |text: &str| {
            rpassword::prompt_password(text)
                .map(|p| Self(Zeroizing::new(p)))
                .map_err(|source| SigningError::Prompt { source })
        };
        let first = read("Enter password for private key: ")?;
        if prompt == Prompt::Confirm {
            let again = read("Enter password for private key again: ")?;
            if *first.0 != *again.0 {
                return Err(SigningError::PasswordMismatch);
            }
        }
        Ok(first)
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([redacted])")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_redacts() {
        let p = super::Password::new("hunter2");
        assert_eq!(format!("{p:?}"), "Password([redacted])");
    }
}
