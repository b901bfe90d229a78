//! Unit tests of signing: keys, signatures, tampering, permissions.

use super::*;

fn keys(dir: &Path, password: Option<&str>) -> (SecretKey, PublicKey) {
    let prefix = dir.join("k");
    keygen(&prefix, password.map(String::from), false).unwrap();
    let sk = load_secret_key(
        &prefix.with_extension("key"),
        Password::Given(password.unwrap_or("").into()),
    )
    .unwrap();
    let pk = load_public_key(&prefix.with_extension("pub")).unwrap();
    (sk, pk)
}

#[test]
fn key_ids_are_written_as_minisign_writes_them() {
    // minisign 0.11 prints this key as 89E00518B41E621: no leading zero.
    let leading_zero = [0x21, 0xE6, 0x41, 0x8B, 0x51, 0x00, 0x9E, 0x08];
    assert_eq!(key_id(&leading_zero), "89E00518B41E621");
    let full = [0x21, 0xE6, 0x41, 0x8B, 0x51, 0x00, 0x9E, 0xF8];
    assert_eq!(key_id(&full), "F89E00518B41E621");
    assert_eq!(key_id(&[0; 8]), "0");
}

#[test]
fn sign_is_deterministic_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (sk, pk) = keys(dir.path(), None);
    assert_eq!(sk.id(), pk.id());
    let a = sk.sign(b"hello\n", "site:x build:1").unwrap();
    let b = sk.sign(b"hello\n", "site:x build:1").unwrap();
    assert_eq!(a, b);
    assert!(a.starts_with("untrusted comment: "));
    assert!(a.contains("\ntrusted comment: site:x build:1\n"));
    match check(&pk, &a, b"hello\n") {
        Checked::Good { trusted_comment } => assert_eq!(trusted_comment, "site:x build:1"),
        _ => panic!("a fresh signature must verify"),
    }
    assert!(matches!(check(&pk, &a, b"hello!\n"), Checked::Bad { .. }));
    let edited = a.replace("build:1", "build:2");
    assert!(matches!(
        check(&pk, &edited, b"hello\n"),
        Checked::Bad { .. }
    ));
    assert!(matches!(
        check(&pk, "nonsense", b"hello\n"),
        Checked::Unreadable { .. }
    ));
}

/// A signature in minisign's legacy format (`minisign -S -l`): the
/// algorithm `Ed`, the data itself signed rather than its BLAKE2b hash.
fn legacy_sign(sk: &SecretKey, data: &[u8], trusted_comment: &str) -> String {
    let sig = sk.sk.sign(data, None);
    let mut sig_line = b"Ed".to_vec();
    sig_line.extend_from_slice(&sk.keynum);
    sig_line.extend_from_slice(sig.as_ref());
    let mut global = sig.as_ref().to_vec();
    global.extend_from_slice(trusted_comment.as_bytes());
    format!(
        "untrusted comment: legacy\n{}\ntrusted comment: {trusted_comment}\n{}\n",
        b64(&sig_line),
        b64(sk.sk.sign(&global, None).as_ref())
    )
}

#[test]
fn legacy_signatures_are_accepted_like_minisign_does() {
    let dir = tempfile::tempdir().unwrap();
    let (sk, pk) = keys(dir.path(), None);
    let sig = legacy_sign(&sk, b"hello\n", "t");
    match check(&pk, &sig, b"hello\n") {
        Checked::Good { trusted_comment } => assert_eq!(trusted_comment, "t"),
        Checked::Bad { why } => panic!("a legacy signature must verify: {why}"),
        _ => panic!("a legacy signature must verify"),
    }
    assert!(matches!(check(&pk, &sig, b"hello!\n"), Checked::Bad { .. }));
    let edited = legacy_sign(&sk, b"hello\n", "t").replace("comment: t", "comment: u");
    assert!(matches!(
        check(&pk, &edited, b"hello\n"),
        Checked::Bad { .. }
    ));
}

#[test]
fn encrypted_key_needs_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let (sk, pk) = keys(dir.path(), Some("correct horse"));
    let sig = sk.sign(b"x", "c").unwrap();
    assert!(matches!(check(&pk, &sig, b"x"), Checked::Good { .. }));
    let wrong = load_secret_key(
        &dir.path().join("k.key"),
        Password::Given("battery staple".into()),
    );
    assert!(matches!(wrong, Err(KeyError::WrongPassword { .. })));
}

#[test]
fn another_key_is_named() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let (sk_a, _) = keys(a.path(), None);
    let (_, pk_b) = keys(b.path(), None);
    let sig = sk_a.sign(b"x", "c").unwrap();
    match check(&pk_b, &sig, b"x") {
        Checked::OtherKey { signed_by } => assert_eq!(signed_by, sk_a.id()),
        _ => panic!("expected another key"),
    }
}

#[test]
fn keygen_refuses_to_overwrite_and_protects_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("k");
    keygen(&prefix, None, false).unwrap();
    let mode = fs::metadata(dir.path().join("k.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(permission_warning(&dir.path().join("k.key")).is_none());
    assert!(matches!(
        keygen(&prefix, None, false),
        Err(KeyError::Exists { .. })
    ));
    keygen(&prefix, None, true).unwrap();
    fs::set_permissions(dir.path().join("k.key"), fs::Permissions::from_mode(0o644)).unwrap();
    assert!(permission_warning(&dir.path().join("k.key")).is_some());
}

#[test]
fn unencrypted_key_with_a_zeroed_checksum_loads() {
    // What `minisign -G -W` writes; a corrupted checksum is refused.
    let dir = tempfile::tempdir().unwrap();
    keys(dir.path(), None);
    let path = dir.path().join("k.key");
    let text = fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut raw = Base64::decode_to_vec(&lines[1], None).unwrap();
    raw[126..158].fill(0);
    lines[1] = b64(&raw);
    fs::write(&path, lines.join("\n") + "\n").unwrap();
    let sk = load_secret_key(&path, Password::Ask).unwrap();
    let pk = load_public_key(&dir.path().join("k.pub")).unwrap();
    let sig = sk.sign(b"x", "c").unwrap();
    assert!(matches!(check(&pk, &sig, b"x"), Checked::Good { .. }));
    raw[126] = 1;
    lines[1] = b64(&raw);
    fs::write(&path, lines.join("\n") + "\n").unwrap();
    assert!(matches!(
        load_secret_key(&path, Password::Ask),
        Err(KeyError::Corrupted { .. })
    ));
}

#[test]
fn keys_are_not_mixed_up() {
    let dir = tempfile::tempdir().unwrap();
    keys(dir.path(), None);
    assert!(matches!(
        load_secret_key(&dir.path().join("k.pub"), Password::Ask),
        Err(KeyError::NotSecretKey { .. })
    ));
    assert!(matches!(
        load_public_key(&dir.path().join("k.key")),
        Err(KeyError::NotPublicKey { .. })
    ));
    let sk = load_secret_key(&dir.path().join("k.key"), Password::Ask).unwrap();
    assert!(!format!("{sk:?}").contains(&fs::read_to_string(dir.path().join("k.key")).unwrap()));
}
