//! Unit tests of the HTTP pieces: target resolution, conditional requests and ranges, heads.

use super::*;

fn file(raw: &str) -> Result<String, &'static str> {
    match resolve(raw)?.target {
        Target::File(p) => Ok(p),
        other => panic!("{raw}: {other:?}"),
    }
}

#[test]
fn paths_are_decoded() {
    assert_eq!(file("/boot.ipxe"), Ok("boot.ipxe".into()));
    assert_eq!(file("/boot.ipxe?x=1#y"), Ok("boot.ipxe".into()));
    assert_eq!(file("/b%6Fot.ipxe"), Ok("boot.ipxe".into()));
    assert_eq!(
        file("http://10.0.2.2:8080/boot.ipxe"),
        Ok("boot.ipxe".into())
    );
    assert_eq!(
        file("/images/ab/my%20disk.iso"),
        Ok("images/ab/my disk.iso".into())
    );
    assert_eq!(resolve("/").unwrap().target, Target::Overview);
    assert_eq!(resolve("/?x").unwrap().target, Target::Overview);
    assert_eq!(resolve("/.bootc/status").unwrap().target, Target::Status);
    assert_eq!(
        resolve("/http/machines/node01/user-data").unwrap().target,
        Target::Redirect("/machines/node01/user-data".into())
    );
}

#[test]
fn mac_aliases() {
    for raw in [
        "/machines/52%3A54%3A00%3Aaa%3Abb%3A01.ipxe",
        "/machines/52%3a54%3a00%3aAA%3aBB%3a01.ipxe",
        "/machines/52:54:00:aa:bb:01.ipxe",
        "/machines/52-54-00-AA-BB-01.ipxe",
    ] {
        let r = resolve(raw).unwrap();
        assert_eq!(
            r.target,
            Target::File("machines/52-54-00-aa-bb-01.ipxe".into()),
            "{raw}"
        );
    }
    assert_eq!(
        resolve("/machines/52%3A54%3A00%3Aaa%3Abb%3A01.ipxe")
            .unwrap()
            .path,
        "machines/52:54:00:aa:bb:01.ipxe"
    );
    // not a MAC: as is
    assert_eq!(
        file("/machines/node01.ipxe"),
        Ok("machines/node01.ipxe".into())
    );
}

#[test]
fn traversal_is_refused() {
    for raw in [
        "/../etc/passwd",
        "/machines/../../etc/passwd",
        "/%2e%2e/etc/passwd",
        "/%2E%2E/%2E%2E/etc/passwd",
        "/.%2e/etc/passwd",
        "/..%2Fetc%2Fpasswd",
        "/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/images/..%5c..%5cetc%5cpasswd",
        "/./boot.ipxe",
        "//etc/passwd",
        "/machines//etc/passwd",
        "/boot.ipxe%00.png",
        "/%00",
        "/a%0Ab",
        "/%",
        "/%zz",
        "/%e2%28%a1",
        "etc/passwd",
        "*",
        "http://host/../etc/passwd",
    ] {
        assert!(resolve(raw).is_err(), "{raw} was not refused");
    }
}

#[test]
fn content_types() {
    assert_eq!(content_type("boot.ipxe"), "text/plain; charset=utf-8");
    assert_eq!(content_type("manifest.json"), "application/json");
    assert_eq!(
        content_type("machines/node01/user-data"),
        "text/plain; charset=utf-8"
    );
    assert_eq!(
        content_type("images/ab/vmlinuz"),
        "application/octet-stream"
    );
    assert_eq!(content_type("images/ab/initrd.gz"), "application/gzip");
    assert_eq!(
        content_type("images/ab/tools.ISO"),
        "application/x-iso9660-image"
    );
    assert_eq!(content_type("ipxe.efi"), "application/octet-stream");
    assert_eq!(
        cache_control("images/ab/vmlinuz"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(cache_control("boot.ipxe"), "no-cache");
}

#[test]
fn ranges() {
    assert_eq!(parse_range("bytes=0-9", 100), RangeSpec::Bytes(0, 10));
    assert_eq!(parse_range("bytes=90-", 100), RangeSpec::Bytes(90, 100));
    assert_eq!(parse_range("bytes=90-1000", 100), RangeSpec::Bytes(90, 100));
    assert_eq!(parse_range("bytes=-10", 100), RangeSpec::Bytes(90, 100));
    assert_eq!(parse_range("bytes=-1000", 100), RangeSpec::Bytes(0, 100));
    assert_eq!(parse_range("bytes=100-", 100), RangeSpec::Unsatisfiable);
    assert_eq!(parse_range("bytes=-0", 100), RangeSpec::Unsatisfiable);
    assert_eq!(parse_range("bytes=0-1,5-6", 100), RangeSpec::Ignore);
    assert_eq!(parse_range("bytes=5-1", 100), RangeSpec::Ignore);
    assert_eq!(parse_range("items=0-1", 100), RangeSpec::Ignore);
    assert_eq!(parse_range("bytes=x-1", 100), RangeSpec::Ignore);
}

#[test]
fn conditions() {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let date = http_date(t);
    let older = http_date(t - Duration::from_secs(60));
    let etag = "\"abc\"";
    let get = |c: Conditions| answer(&c, true, etag, t, 100);
    assert_eq!(get(Conditions::default()), Answer::Full);
    let c = Conditions {
        if_none_match: Some("\"x\", \"abc\""),
        ..Default::default()
    };
    assert_eq!(get(c), Answer::NotModified);
    let c = Conditions {
        if_none_match: Some("W/\"abc\""),
        ..Default::default()
    };
    assert_eq!(get(c), Answer::NotModified, "weak comparison");
    let c = Conditions {
        if_none_match: Some("\"x\""),
        if_modified_since: Some(&date),
        ..Default::default()
    };
    assert_eq!(get(c), Answer::Full, "If-None-Match wins");
    let c = Conditions {
        if_modified_since: Some(&date),
        ..Default::default()
    };
    assert_eq!(get(c), Answer::NotModified);
    let c = Conditions {
        if_modified_since: Some(&older),
        ..Default::default()
    };
    assert_eq!(get(c), Answer::Full);
    let c = Conditions {
        if_match: Some("\"x\""),
        ..Default::default()
    };
    assert_eq!(get(c), Answer::PreconditionFailed);
    let c = Conditions {
        if_unmodified_since: Some(&older),
        ..Default::default()
    };
    assert_eq!(get(c), Answer::PreconditionFailed);
    let c = Conditions {
        range: Some("bytes=10-19"),
        ..Default::default()
    };
    assert_eq!(get(c.clone()), Answer::Partial { start: 10, end: 20 });
    assert_eq!(answer(&c, false, etag, t, 100), Answer::Full, "HEAD");
    let c = Conditions {
        range: Some("bytes=10-19"),
        if_range: Some("\"old\""),
        ..Default::default()
    };
    assert_eq!(get(c), Answer::Full, "If-Range with another ETag");
    let c = Conditions {
        range: Some("bytes=10-19"),
        if_range: Some(etag),
        ..Default::default()
    };
    assert_eq!(get(c), Answer::Partial { start: 10, end: 20 });
    let c = Conditions {
        range: Some("bytes=10-19"),
        if_range: Some(&date),
        ..Default::default()
    };
    assert_eq!(get(c), Answer::Partial { start: 10, end: 20 });
    let c = Conditions {
        range: Some("bytes=200-"),
        ..Default::default()
    };
    assert_eq!(get(c), Answer::Unsatisfiable);
}

#[test]
fn files_stream_through_one_buffer() {
    let data: Vec<u8> = (0..(3 * CHUNK + 17)).map(|i| i as u8).collect();
    let head = Head::new(200).length(data.len() as u64);
    let mut out = Vec::new();
    let mut sent = 0;
    send_file(
        &mut out,
        &head,
        "d",
        &mut &data[..],
        data.len() as u64,
        &mut sent,
    )
    .unwrap();
    assert_eq!(sent, data.len() as u64);
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert_eq!(&out[split..], &data[..]);
    // a file shorter than announced is an error, not a short answer
    let mut out = Vec::new();
    let mut sent = 0;
    assert!(send_file(&mut out, &head, "d", &mut &data[..10], 100, &mut sent).is_err());
}
