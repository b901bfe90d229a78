//! The report at fleet size (issue: 100,000 machines): report/index.html
//! holds the summary, and every machine is reached through the page's
//! search over report/machines.js, from file:// in headless Chromium.

use crate::harness::Site;

/// A 20,000-machine site: the basic fixture without [dhcp], its machines in
/// one generated file, spread over four racks.
fn fleet(n: usize) -> Site {
    let s = Site::fixture("basic");
    let conf = s.read("bootc.toml");
    let dhcp = conf.find("[dhcp]").unwrap()..conf.find("[ipxe]").unwrap();
    s.write("bootc.toml", &conf.replace(&conf[dhcp], ""));
    let mut text = String::from("[defaults]\nrole = \"worker\"\n");
    for i in 0..n {
        text.push_str(&format!(
            "\n[[machine]]\nname = \"n{i:05}\"\nmac = \"02:00:00:{:02x}:{:02x}:{:02x}\"\nlabels = {{ rack = \"r{}\" }}\nvars = {{ tier = \"t{}\" }}\n",
            i >> 16,
            (i >> 8) & 255,
            i & 255,
            i % 4,
            i % 3
        ));
    }
    s.write("machines/fleet.toml", &text);
    s
}

/// Search for one machine, open its detail and read its kernel arguments;
/// a label filter narrows the list to that rack.
#[test]
fn searching_a_20000_machine_report_in_a_browser() {
    if !crate::boot_support::need("chromium") {
        return;
    }
    let s = fleet(20_000);
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let page = s.path("public/report/index.html");
    assert!(
        std::fs::metadata(&page).unwrap().len() < 64 << 10,
        "the page stays small"
    );
    let url = |hash: &str| format!("file://{}#{hash}", page.display());

    let Some(dom) = crate::serve::chromium_dom(&url("q=n12345&m=n12345")) else {
        return;
    };
    assert!(
        dom.contains("<p id=\"count\">1 of 20003 machines.</p>"),
        "{dom}"
    );
    assert!(dom.contains("id=\"m-n12345\""), "{dom}");
    let args = dom
        .split("<code class=\"args\" id=\"detail-args\">")
        .nth(1)
        .and_then(|rest| rest.split("</code>").next())
        .unwrap_or_else(|| panic!("no detail:\n{dom}"));
    assert_eq!(args, "console=ttyS0 bootc.role=worker worker.tier=t0");

    // rack r2: a quarter of the generated machines and the fixture's node03.
    let dom = crate::serve::chromium_dom(&url("label=rack%3Dr2")).unwrap();
    assert!(
        dom.contains("<p id=\"count\">5001 machines match; the first 200 are listed: refine the search to see the others.</p>"),
        "{}",
        &dom[dom.find("id=\"count\"").unwrap_or(0)..][..300]
    );
    let rows = dom.matches("<tr class=\"machine\" id=\"m-n").count();
    assert_eq!(rows, 200);
    assert!(!dom.contains("id=\"m-n00000\""), "n00000 is in rack r0");
    assert!(dom.contains("id=\"m-n00002\""), "n00002 is in rack r2");
}

/// The index names the outside hosts a machine's boot reaches: in its
/// per-machine files and in its kernel arguments, not base-url's own.
#[test]
fn the_index_names_the_hosts_of_files_and_args() {
    let s = Site::fixture("basic");
    let tpl = s.read("templates/cloud-init.yaml.j2");
    s.write(
        "templates/cloud-init.yaml.j2",
        &format!("{tpl}apt: {{ mirror: \"http://mirror.example.org/debian\" }}\n"),
    );
    let role = s.read("roles/worker.toml");
    s.write(
        "roles/worker.toml",
        &role.replace(
            "kernel-args = [\"",
            "kernel-args = [\"url=https://args.example.net/x\", \"",
        ),
    );
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let index = s.read("public/report/machines.js");
    // Sorted, space-separated; the fixture's base-url host (10.77.0.1,
    // which sorts first) is left out.
    assert!(
        index.contains("\"user-data\",\"args.example.net mirror.example.org\""),
        "{index}"
    );
}
