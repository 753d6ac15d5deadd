//! Passwords (argon2id), API tokens (random, stored as SHA-256) and other secrets.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Compares two secrets without leaking where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The stored form of a token: hex SHA-256 (tokens carry 256 random bits, so a slow
/// password hash would add nothing).
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new API token and its stored hash.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("fk_{}", hex::encode(bytes));
    let hash = hash_token(&token);
    (token, hash)
}

/// Argon2id with 12 MiB and 3 passes: one of the settings OWASP's password storage
/// guidance rates as equally strong (its list runs from 46 MiB × 1 pass to 7 MiB × 5),
/// about the same CPU time as 19 MiB × 2, and 7 MiB less memory per hash — what sets
/// a small server's peak memory when sign-ins arrive together.
fn argon2() -> argon2::Argon2<'static> {
    let params = argon2::Params::new(12 * 1024, 3, 1, None).expect("valid argon2 parameters");
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// An argon2id hash of a password (PHC string: algorithm, parameters and salt
/// included), with the parameters of [`argon2`]. Hashes made with other parameters
/// (earlier versions used 19 MiB × 2) still verify: the PHC string carries them.
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches a hash made by [`hash_password`] (constant time).
pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).is_ok_and(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
}

/// A random secret of 32 bytes, hex-encoded (session ids, CSRF tokens, passwords).
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hash_stably() {
        let (a, ha) = new_token();
        let (b, _) = new_token();
        assert_ne!(a, b);
        assert!(a.starts_with("fk_") && a.len() == 67);
        assert_eq!(hash_token(&a), ha);
        assert!(constant_time_eq(b"abc", b"abc") && !constant_time_eq(b"abc", b"abd"));
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterY", &h));
        assert!(!verify_password("x", "not a hash"));
        assert_ne!(h, hash_password("correct horse battery").unwrap(), "salted");
        assert!(h.contains("$m=12288,t=3,p=1$"), "{h}");

        // A hash made with other parameters (19 MiB × 2, as before) still verifies.
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        let old = argon2::Argon2::default()
            .hash_password(b"correct horse battery", &salt)
            .unwrap()
            .to_string();
        assert!(old.contains("$m=19456,t=2,p=1$"), "{old}");
        assert!(verify_password("correct horse battery", &old));
        assert!(!verify_password("correct horse batterY", &old));
    }
}
