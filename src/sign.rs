//! Signing the manifest in minisign's format (Ed25519, BLAKE2b-prehashed).
//!
//! Key files are read and written with the `minisign` crate (including the
//! scrypt-encrypted secret keys of `minisign -G`), and signatures are checked
//! with it. Signatures are *made* here, with `ed25519-compact` and no added
//! noise: the `minisign` crate mixes random noise into every signature, which
//! would make two builds of the same site with the same key differ. Ed25519
//! without noise is deterministic (RFC 8032), so a signed build stays
//! byte-identical. The format is minisign's own:
//!
//! ```text
//! untrusted comment: <free text>
//! base64("ED" || key id (8 bytes) || Ed25519(BLAKE2b-512(file)))
//! trusted comment: <text>
//! base64(Ed25519(signature || trusted comment))
//! ```
//!
//! The secret key never leaves this module: [`SecretKey`] has no `Debug`
//! and no accessor for its bytes, and no error message quotes a key file.

use std::fmt;
use std::fs;
use std::io::{self, Cursor, IsTerminal};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use blake2::digest::consts::U32;
use blake2::{Blake2b, Blake2b512, Digest};
use ct_codecs::{Base64, Decoder, Encoder};

/// Where the password of a protected secret key comes from when there is no
/// terminal to ask on.
pub const PASSWORD_ENV: &str = "BOOTC_SIGN_KEY_PASSWORD";

const UNTRUSTED_PREFIX: &str = "untrusted comment: ";
const TRUSTED_PREFIX: &str = "trusted comment: ";
const SIG_UNTRUSTED_COMMENT: &str = "signature from bootc secret key";

/// A problem with a key file or a signature. Messages name the file, never
/// its content.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    // `error` is part of the message, not a `source`: printed with its
    // chain (`{:#}`), the OS error would otherwise appear twice.
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
    #[error("{}: not a minisign secret key{}", path.display(), hint(path))]
    NotSecretKey { path: PathBuf },
    #[error("{}: not a minisign public key: {why}", path.display())]
    NotPublicKey { path: PathBuf, why: String },
    #[error(
        "{}: the key is password-protected: set {PASSWORD_ENV} or run on a terminal to be asked",
        path.display()
    )]
    NoPassword { path: PathBuf },
    #[error("{}: wrong password for this key", path.display())]
    WrongPassword { path: PathBuf },
    #[error("{}: the key is corrupted ({why})", path.display())]
    Corrupted { path: PathBuf, why: String },
    #[error("{}: {what} exists already (pass --force to replace it)", path.display())]
    Exists { path: PathBuf, what: &'static str },
    #[error("{0}")]
    Other(String),
}

fn hint(path: &Path) -> &'static str {
    if path.extension().is_some_and(|e| e == "pub") {
        " (this looks like the public key: sign with the .key file)"
    } else {
        ""
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> KeyError + '_ {
    move |error| KeyError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// A decrypted secret key, ready to sign.
pub struct SecretKey {
    keynum: [u8; 8],
    sk: ed25519_compact::SecretKey,
    /// The same key as the `minisign` crate sees it, to check each signature.
    public: minisign::PublicKey,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", key_id(&self.keynum))
    }
}

impl SecretKey {
    /// The key id, as minisign prints it.
    pub fn id(&self) -> String {
        key_id(&self.keynum)
    }

    /// The public half's bytes: what identifies the key beyond its ID.
    pub fn public_bytes(&self) -> [u8; 32] {
        *self.sk.public_key()
    }

    /// Signs `data`, giving the text of a `.minisig` file. Deterministic: the
    /// same key, data and comment give the same bytes.
    pub fn sign(&self, data: &[u8], trusted_comment: &str) -> Result<String, KeyError> {
        let trusted_comment = one_line(trusted_comment);
        let prehash = Blake2b512::digest(data);
        let sig = self.sk.sign(prehash.as_slice(), None);
        let mut sig_line = Vec::with_capacity(74);
        sig_line.extend_from_slice(b"ED");
        sig_line.extend_from_slice(&self.keynum);
        sig_line.extend_from_slice(sig.as_ref());
        let mut global = sig.as_ref().to_vec();
        global.extend_from_slice(trusted_comment.as_bytes());
        let global_sig = self.sk.sign(&global, None);
        let text = format!(
            "{UNTRUSTED_PREFIX}{SIG_UNTRUSTED_COMMENT}\n{}\n{TRUSTED_PREFIX}{trusted_comment}\n{}\n",
            b64(&sig_line),
            b64(global_sig.as_ref()),
        );
        // Check it the way a verifier will, with the minisign crate.
        let sig_box = minisign::SignatureBox::from_string(&text)
            .map_err(|e| KeyError::Other(format!("the signature just made does not parse: {e}")))?;
        minisign::verify(
            &self.public,
            &sig_box,
            Cursor::new(data),
            true,
            false,
            false,
        )
        .map_err(|e| KeyError::Other(format!("the signature just made does not verify: {e}")))?;
        Ok(text)
    }
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn b64(bytes: &[u8]) -> String {
    Base64::encode_to_string(bytes).expect("base64 of a small buffer")
}

/// A key id as minisign (the C tool) prints it: the 8 bytes as a
/// little-endian u64, in upper-case hex without leading zeros
/// (`89E00518B41E621`, not `089E00518B41E621`).
pub fn key_id(keynum: &[u8]) -> String {
    let mut n = [0u8; 8];
    n.copy_from_slice(&keynum[..8]);
    format!("{:X}", u64::from_le_bytes(n))
}

/// Where a password comes from.
pub enum Password {
    /// From the environment or a terminal, asked only if the key needs it.
    Ask,
    /// Given (tests).
    #[allow(dead_code)]
    Given(String),
}

/// Warns (on stderr) when a secret key file can be read by other users.
pub fn permission_warning(path: &Path) -> Option<String> {
    let mode = fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "{}: the secret key is readable by other users (mode {mode:03o}); `chmod 600 {}`",
            path.display(),
            path.display()
        )
    })
}

/// Reads a minisign secret key (`bootc keygen`, or `minisign -G`, with or
/// without `-W`), asking for its password when it is protected.
pub fn load_secret_key(path: &Path, password: Password) -> Result<SecretKey, KeyError> {
    let text = fs::read_to_string(path).map_err(|e| match e.kind() {
        io::ErrorKind::InvalidData => KeyError::NotSecretKey {
            path: path.to_path_buf(),
        },
        _ => io_err(path)(e),
    })?;
    let not_sk = || KeyError::NotSecretKey {
        path: path.to_path_buf(),
    };
    let mut lines = text.lines();
    if !lines
        .next()
        .is_some_and(|l| l.starts_with(UNTRUSTED_PREFIX))
    {
        return Err(not_sk());
    }
    let raw = lines
        .next()
        .and_then(|l| Base64::decode_to_vec(l.trim(), None).ok())
        .ok_or_else(not_sk)?;
    // sig_alg(2) kdf_alg(2) chk_alg(2) salt(32) ops(8) mem(8) keynum(8) sk(64) chk(32)
    if raw.len() != 158 || &raw[0..2] != b"Ed" {
        return Err(not_sk());
    }
    let encrypted = match &raw[2..4] {
        [0, 0] => false,
        b"Sc" => true,
        _ => {
            return Err(KeyError::Corrupted {
                path: path.to_path_buf(),
                why: "unknown key encryption".into(),
            });
        }
    };
    let corrupted = |why: &str| KeyError::Corrupted {
        path: path.to_path_buf(),
        why: why.to_string(),
    };
    let bytes = if encrypted {
        let password = match password {
            Password::Given(p) => p,
            Password::Ask => ask_password(path)?,
        };
        let sk_box = minisign::SecretKeyBox::from_string(&text).map_err(|_| not_sk())?;
        let sk = sk_box.into_secret_key(Some(password)).map_err(|e| {
            if e.to_string().contains("Wrong password") {
                KeyError::WrongPassword {
                    path: path.to_path_buf(),
                }
            } else {
                corrupted(&e.to_string())
            }
        })?;
        sk.to_bytes()
    } else {
        // Not through the minisign crate: `minisign -G -W` leaves the
        // checksum of an unencrypted key zeroed, which the crate refuses.
        // A set checksum is checked; the key pair is checked below anyway.
        let chk = &raw[126..158];
        let mut h = Blake2b::<U32>::new();
        h.update(&raw[0..2]);
        h.update(&raw[54..126]);
        if chk.iter().any(|b| *b != 0) && h.finalize().as_slice() != chk {
            return Err(corrupted("bad checksum"));
        }
        raw
    };
    let mut keynum = [0u8; 8];
    keynum.copy_from_slice(&bytes[54..62]);
    let secret = ed25519_compact::SecretKey::from_slice(&bytes[62..126])
        .map_err(|_| corrupted("bad key length"))?;
    secret
        .validate_public_key(&secret.public_key())
        .map_err(|_| corrupted("its public half does not match its secret half"))?;
    let mut pk_bytes = b"Ed".to_vec();
    pk_bytes.extend_from_slice(&keynum);
    pk_bytes.extend_from_slice(secret.public_key().as_ref());
    let public =
        minisign::PublicKey::from_bytes(&pk_bytes).map_err(|e| corrupted(&e.to_string()))?;
    Ok(SecretKey {
        keynum,
        sk: secret,
        public,
    })
}

/// The password from `BOOTC_SIGN_KEY_PASSWORD`, else asked on the terminal.
fn ask_password(path: &Path) -> Result<String, KeyError> {
    if let Some(p) = std::env::var_os(PASSWORD_ENV).filter(|p| !p.is_empty()) {
        return p
            .into_string()
            .map_err(|_| KeyError::Other(format!("{PASSWORD_ENV} is not valid UTF-8")));
    }
    if !io::stdin().is_terminal() {
        return Err(KeyError::NoPassword {
            path: path.to_path_buf(),
        });
    }
    rpassword::prompt_password(format!("password for {}: ", path.display()))
        .map_err(|e| KeyError::Other(format!("reading the password: {e}")))
}

/// A minisign public key.
pub struct PublicKey {
    pub key: minisign::PublicKey,
}

impl PublicKey {
    pub fn id(&self) -> String {
        key_id(self.key.keynum())
    }
}

/// Reads a minisign public key file (`PREFIX.pub`, `minisign -G`'s
/// `minisign.pub`); also accepts the bare base64 line (`minisign -P`).
pub fn load_public_key(path: &Path) -> Result<PublicKey, KeyError> {
    let text = fs::read_to_string(path).map_err(|e| match e.kind() {
        io::ErrorKind::InvalidData => KeyError::NotPublicKey {
            path: path.to_path_buf(),
            why: "not text".into(),
        },
        _ => io_err(path)(e),
    })?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with(UNTRUSTED_PREFIX))
        .unwrap_or("");
    let bad = |why: &str| KeyError::NotPublicKey {
        path: path.to_path_buf(),
        why: why.to_string(),
    };
    let raw = Base64::decode_to_vec(line, None).map_err(|_| bad("no base64 key line"))?;
    if raw.len() == 158 {
        return Err(bad("this is a secret key: verify with the .pub file"));
    }
    if raw.len() != 42 || &raw[0..2] != b"Ed" {
        return Err(bad("wrong length or algorithm"));
    }
    let key = minisign::PublicKey::from_base64(line).map_err(|e| bad(&e.to_string()))?;
    Ok(PublicKey { key })
}

/// What a signature file says and whether it holds for `data`.
pub enum Checked {
    Good {
        trusted_comment: String,
    },
    /// Signed by a key with another id.
    OtherKey {
        signed_by: String,
    },
    /// Right key id, but the signature does not hold: the data or the
    /// signature was changed.
    Bad {
        why: String,
    },
    /// Not a minisign signature.
    Unreadable {
        why: String,
    },
}

/// Checks a `.minisig` text against `data` and a public key.
pub fn check(pk: &PublicKey, sig_text: &str, data: &[u8]) -> Checked {
    let sig_box = match minisign::SignatureBox::from_string(sig_text) {
        Ok(b) => b,
        Err(e) => {
            return Checked::Unreadable { why: e.to_string() };
        }
    };
    if sig_box.keynum() != pk.key.keynum() {
        return Checked::OtherKey {
            signed_by: key_id(sig_box.keynum()),
        };
    }
    // Legacy signatures (algorithm `Ed`, of the data itself rather than its
    // BLAKE2b hash: `minisign -S -l`) are accepted, as `minisign -V` does.
    match minisign::verify(&pk.key, &sig_box, Cursor::new(data), true, false, true) {
        Ok(()) => Checked::Good {
            trusted_comment: sig_box.trusted_comment().unwrap_or_default(),
        },
        Err(e) => Checked::Bad { why: e.to_string() },
    }
}

/// The trusted comment bootc puts in a manifest's signature: it names the
/// site and the build, and holds no timestamp, so builds stay reproducible.
pub fn trusted_comment(site: &str, build_id: &str) -> String {
    format!("site:{site} build:{build_id}")
}

/// Writes `PREFIX.key` (mode 600) and `PREFIX.pub`; returns the key id.
/// `password`: `None` for an unencrypted key (a CI secret).
pub fn keygen(prefix: &Path, password: Option<String>, force: bool) -> Result<String, KeyError> {
    let sk_path = with_suffix(prefix, ".key");
    let pk_path = with_suffix(prefix, ".pub");
    for (p, what) in [(&sk_path, "the secret key"), (&pk_path, "the public key")] {
        if !force && fs::symlink_metadata(p).is_ok() {
            return Err(KeyError::Exists {
                path: p.clone(),
                what,
            });
        }
    }
    let pair = match password {
        Some(p) => minisign::KeyPair::generate_encrypted_keypair(Some(p)),
        None => minisign::KeyPair::generate_unencrypted_keypair(),
    }
    .map_err(|e| KeyError::Other(format!("generating a key: {e}")))?;
    let id = key_id(pair.pk.keynum());
    let comment = format!("bootc secret key {id}");
    let sk_text = pair
        .sk
        .to_box(Some(&comment))
        .map_err(|e| KeyError::Other(e.to_string()))?
        .to_string();
    // Written as minisign writes it (the crate's `to_box` pads the id to 16
    // digits and adds a colon), so the first line reads as minisign's does.
    let pk_text = format!(
        "{UNTRUSTED_PREFIX}minisign public key {id}\n{}\n",
        pair.pk.to_base64()
    );
    write_new(&sk_path, sk_text.as_bytes(), 0o600, force)?;
    write_new(&pk_path, pk_text.as_bytes(), 0o644, force)?;
    Ok(id)
}

pub fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// Creates `path` with `mode` from the start (a secret key is never, even
/// briefly, readable by others), replacing an old file only with `force`.
fn write_new(path: &Path, bytes: &[u8], mode: u32, force: bool) -> Result<(), KeyError> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    if force {
        match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(path)(e)),
            _ => {}
        }
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

#[cfg(test)]
mod tests;
