//! `bootc serve` previews: it builds with base-url set to its own address
//! (or `--base-url`), so the absolute URLs of scripts and per-machine files
//! (a cloud-init file here) point at the preview, not at production.

use crate::harness::Site;
use crate::serve::Serve;

/// The basic fixture, whose worker role has the per-machine file
/// `user-data`, made to name its URLs (as a cloud-init seed does).
fn site() -> Site {
    let s = Site::fixture("basic");
    s.append(
        "templates/cloud-init.yaml.j2",
        "# seed {{ machine.url }}\n# base {{ site.base_url }}\n",
    );
    s
}

#[test]
fn serve_points_absolute_urls_at_the_preview() {
    let s = site();
    let serve = Serve::start(&s, &[]);
    let me = format!("http://127.0.0.1:{}/", serve.port());
    let file = serve.get("/machines/node01/user-data");
    assert_eq!(file.status, 200);
    let text = String::from_utf8_lossy(&file.body).into_owned();
    assert!(
        text.contains(&format!("# seed {me}machines/node01/\n")),
        "{text}"
    );
    assert!(text.contains(&format!("# base {me}\n")), "{text}");
    assert!(!text.contains("10.77.0.1"), "production's base-url: {text}");
    // The machine's script: its beacon is absolute, at the preview too.
    let script = serve.get("/machines/52-54-00-aa-bb-01.ipxe");
    let script = String::from_utf8_lossy(&script.body).into_owned();
    assert!(!script.contains("10.77.0.1"), "{script}");
    // The overview says so.
    let page = String::from_utf8_lossy(&serve.get("/").body).into_owned();
    assert!(page.contains("id=\"bootc-base-url\""), "{page}");
    assert!(serve.log().contains(&format!("built with base-url {me}")));
    // `bootc build` keeps the site's own.
    assert_eq!(s.build().code, 0);
    assert!(
        s.out("http/machines/node01/user-data")
            .contains("# seed http://10.77.0.1:8080/boot/machines/node01/\n")
    );
}

#[test]
fn serve_base_url_option_wins() {
    let s = site();
    let serve = Serve::start(&s, &["--base-url", "http://10.0.2.2:8089"]);
    let text = String::from_utf8_lossy(&serve.get("/machines/node01/user-data").body).into_owned();
    assert!(
        text.contains("# seed http://10.0.2.2:8089/machines/node01/\n"),
        "{text}"
    );
}

#[test]
fn serve_refuses_a_base_url_that_is_no_url() {
    let r: crate::harness::Run = crate::harness::bootc()
        .args(["serve", ".", "--base-url", "ftp://x/"])
        .current_dir(site().root())
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("error: --base-url"), "{}", r.stderr);
}
