//! Mints a test JWT for benches/load.sh: `jwt ALG KEYFILE SUB [SECONDS]` prints a token for
//! `sub`, valid for SECONDS (default 3600), signed with the PEM private key (ES256, EdDSA,
//! RS256) or the secret file (HS256). For load tests and demonstrations only.
#![allow(clippy::print_stdout, reason = "the token is the output")]

use jsonwebtoken::{Algorithm, EncodingKey, Header};

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [alg, key, sub, rest @ ..] = args.as_slice() else {
        eprintln!("usage: jwt ALG KEYFILE SUB [SECONDS]");
        return std::process::ExitCode::from(2);
    };
    let seconds: i64 = rest.first().and_then(|s| s.parse().ok()).unwrap_or(3600);
    let Ok(alg) = alg.parse::<Algorithm>() else {
        eprintln!("unknown algorithm {alg}");
        return std::process::ExitCode::from(2);
    };
    let Ok(bytes) = std::fs::read(key) else {
        eprintln!("cannot read {key}");
        return std::process::ExitCode::from(2);
    };
    let key = match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => Ok(EncodingKey::from_secret(
            String::from_utf8_lossy(&bytes).trim().as_bytes(),
        )),
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&bytes),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&bytes),
        _ => EncodingKey::from_rsa_pem(&bytes),
    };
    let now = jiff::Timestamp::now().as_second();
    let claims = serde_json::json!({"sub": sub, "iat": now, "exp": now + seconds});
    match key.and_then(|key| jsonwebtoken::encode(&Header::new(alg), &claims, &key)) {
        Ok(token) => {
            println!("{token}");
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("cannot sign: {error}");
            std::process::ExitCode::from(1)
        }
    }
}
