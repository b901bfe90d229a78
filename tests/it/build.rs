//! Building: the output tree, its determinism, atomicity and rsync-friendliness.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::boot_support::need;
use crate::harness::{Site, bootc, sparse_disk, tree};

#[test]
fn builds_the_tree_of_spec_section_4() {
    let s = Site::fixture("basic");
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let files: Vec<String> = tree(&s.path("public")).into_keys().collect();
    let images: Vec<&String> = files
        .iter()
        .filter(|f| f.starts_with("http/images/"))
        .collect();
    assert_eq!(images.len(), 2, "{files:?}");
    for want in [
        "http/boot.ipxe",
        "http/fallback.ipxe",
        "http/machines/52-54-00-aa-bb-01.ipxe",
        "http/machines/52-54-00-aa-bb-02.ipxe",
        "http/machines/52-54-00-aa-bb-12.ipxe",
        "http/machines/52-54-00-aa-bb-03.ipxe",
        "http/machines/node01/user-data",
        "http/machines/node02/user-data",
        "http/manifest.json",
        "plan.json",
        "report/index.html",
    ] {
        assert!(
            files.contains(&want.to_string()),
            "{want} missing from {files:?}"
        );
    }
    // Content-addressed images: the folder is the BLAKE3 of the file.
    for img in images {
        let bytes = fs::read(s.path(&format!("public/{img}"))).unwrap();
        let hash = img.split('/').nth(2).unwrap();
        assert_eq!(hash, blake3::hash(&bytes).to_hex().as_str());
    }
    // No machine without a role file folder: node03 has no files.
    assert!(!s.path("public/http/machines/node03").exists());
}

#[test]
fn scripts_snapshot() {
    let s = Site::fixture("basic");
    assert_eq!(s.build().code, 0);
    insta::assert_snapshot!("boot.ipxe", s.out("http/boot.ipxe"));
    insta::assert_snapshot!("fallback_local.ipxe", s.out("http/fallback.ipxe"));
    insta::assert_snapshot!("node01.ipxe", s.out("http/machines/52-54-00-aa-bb-01.ipxe"));
    insta::assert_snapshot!(
        "node02_second_nic.ipxe",
        s.out("http/machines/52-54-00-aa-bb-12.ipxe")
    );
    insta::assert_snapshot!(
        "node03_local_disk.ipxe",
        s.out("http/machines/52-54-00-aa-bb-03.ipxe")
    );
    insta::assert_snapshot!("node02_user_data", s.out("http/machines/node02/user-data"));
    insta::assert_snapshot!("plan.json", s.out("plan.json"));
    insta::assert_snapshot!("manifest.json", s.out("http/manifest.json"));
}

#[test]
fn machine_args_follow_role_chain_and_vars_precedence() {
    let s = Site::fixture("basic");
    assert_eq!(s.build().code, 0);
    let plan: serde_json::Value = serde_json::from_str(&s.out("plan.json")).unwrap();
    let node02 = plan["machines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "node02")
        .unwrap();
    // image args, then base, then worker, then the machine's; machine vars win.
    assert_eq!(
        node02["kernel-args"],
        serde_json::json!([
            "console=ttyS0",
            "bootc.role=worker",
            "worker.tier=silver",
            "nomodeset"
        ])
    );
    assert_eq!(node02["role-chain"], serde_json::json!(["worker", "base"]));
    let script = s.out("http/machines/52-54-00-aa-bb-02.ipxe");
    assert!(
        script.contains(
            "initrd=initrd.img console=ttyS0 bootc.role=worker worker.tier=silver nomodeset"
        ),
        "{script}"
    );
}

#[test]
fn fallback_modes() {
    for (mode, must) in [
        ("local", "exit"),
        ("shell", "shell"),
        ("menu", "choose --default bootc-local"),
        ("base", "bootc.role=base"),
    ] {
        let s = Site::fixture("basic");
        s.edit(
            "bootc.toml",
            "fallback = \"local\"",
            &format!("fallback = \"{mode}\""),
        );
        let r = s.build();
        assert_eq!(r.code, 0, "{mode}: {}", r.stderr);
        let fb = s.out("http/fallback.ipxe");
        assert!(fb.contains(must), "{mode}: {fb}");
        insta::assert_snapshot!(format!("fallback_{mode}.ipxe"), fb);
    }
}

#[test]
fn deterministic_across_directories() {
    let a = Site::fixture("basic");
    let b = Site::fixture("basic");
    assert_ne!(a.root(), b.root());
    assert_eq!(a.build().code, 0);
    // Build b from another working directory, with an explicit output path.
    let out = b.path("elsewhere/out");
    let r: crate::harness::Run = bootc()
        .args([
            "build",
            b.root().to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
        .current_dir("/")
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ta = tree(&a.path("public"));
    let tb = tree(&out);
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    for (k, v) in &ta {
        assert!(tb[k] == *v, "{k} differs between the two builds");
    }
    for (k, v) in &ta {
        let text = String::from_utf8_lossy(v);
        assert!(
            !text.contains(a.root().to_str().unwrap()),
            "{k} holds an absolute local path"
        );
    }
}

fn mtimes(dir: &Path) -> std::collections::BTreeMap<String, SystemTime> {
    tree(dir)
        .into_keys()
        .map(|k| {
            let t = fs::metadata(dir.join(&k)).unwrap().modified().unwrap();
            (k, t)
        })
        .collect()
}

fn age_tree(dir: &Path) {
    let old = SystemTime::now() - Duration::from_secs(3600);
    for k in tree(dir).into_keys() {
        fs::File::options()
            .write(true)
            .open(dir.join(&k))
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
}

#[test]
fn unchanged_files_keep_their_mtime() {
    let s = Site::fixture("basic");
    assert_eq!(s.build().code, 0);
    let out = s.path("public");
    age_tree(&out);
    let before = mtimes(&out);
    // The deployed copy, as `bootc build && rsync -a` makes it.
    let rsync = need("rsync");
    let deployed = tempfile::tempdir().unwrap();
    let mirror = deployed.path().join("boot");
    if rsync {
        assert_eq!(rsync_changes(&out, &mirror).len(), before.len());
    }
    // A no-op rebuild touches nothing.
    assert_eq!(s.build().code, 0);
    assert_eq!(
        mtimes(&out),
        before,
        "a no-op rebuild must keep every mtime"
    );
    // A one-machine change touches that machine's files, the plan, report and manifest.
    s.edit(
        "machines/sub/rack2.toml",
        "name = \"node03\"",
        "name = \"node03\"\nkernel-args = [\"quiet\"]",
    );
    s.edit(
        "machines/sub/rack2.toml",
        "role = \"disk\"",
        "role = \"base\"",
    );
    assert_eq!(s.build().code, 0);
    let after = mtimes(&out);
    let changed: Vec<&String> = after
        .keys()
        .filter(|k| before.get(*k) != after.get(*k))
        .collect();
    let want = vec![
        "http/machines/52-54-00-aa-bb-03.ipxe",
        "http/manifest.json",
        "plan.json",
        "report/index.html",
        "report/machines.js",
    ];
    assert_eq!(
        changed, want,
        "only the changed machine and the summaries may change"
    );
    if rsync {
        assert_eq!(rsync_changes(&out, &mirror), want, "what rsync -a moved");
    }
}

/// The files `rsync -a --delete` sends from `from` to `to` (its
/// `--itemize-changes` lines of files sent), sorted.
fn rsync_changes(from: &Path, to: &Path) -> Vec<String> {
    let o = std::process::Command::new("rsync")
        .args(["-a", "--delete", "--itemize-changes"])
        .arg(format!("{}/", from.display()))
        .arg(to)
        .output()
        .expect("run rsync");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut sent: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            l.strip_prefix(">f")
                .map(|r| r.split_once(' ').unwrap().1.to_string())
        })
        .collect();
    sent.sort();
    sent
}

#[test]
fn failed_build_leaves_the_previous_tree() {
    let s = Site::fixture("basic");
    assert_eq!(s.build().code, 0);
    let out = s.path("public");
    age_tree(&out);
    let before = tree(&out);
    let before_m = mtimes(&out);
    s.edit("roles/base.toml", "\"linux\"", "\"linx\"");
    assert_eq!(s.build().code, 1);
    assert!(
        tree(&out) == before,
        "the previous tree must stay as it was"
    );
    assert_eq!(mtimes(&out), before_m);
}

#[test]
fn killed_build_leaves_the_previous_tree() {
    let s = Site::fixture("basic");
    assert_eq!(s.build().code, 0);
    let out = s.path("public");
    let before = tree(&out);
    // A large (sparse) artifact makes the copy slow enough to be killed in the middle.
    let big = s.path("artifacts/big.img");
    sparse_disk(&big, 6 << 30);
    s.write(
        "images/disk.toml",
        "iso = { path = \"artifacts/big.img\" }\n",
    );
    let mut child = bootc()
        .args(["build", "."])
        .current_dir(s.root())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let staging = loop {
        let found = fs::read_dir(s.root()).unwrap().flatten().find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".public.bootc-staging-")
        });
        if let Some(e) = found
            && e.path().join("http/images").exists()
        {
            break e.path();
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the build ended ({status}) before it could be killed");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no staging folder appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        tree(&out) == before,
        "a killed build must leave the previous tree"
    );
    // The next build clears the leftover staging folder and succeeds.
    fs::remove_file(&big).unwrap();
    s.write("images/disk.toml", "local = true\n");
    assert_eq!(s.build().code, 0);
    assert!(
        !staging.exists(),
        "stale staging folder {} not removed",
        staging.display()
    );
}

#[test]
fn refuses_to_replace_a_foreign_folder() {
    let s = Site::fixture("basic");
    s.write("www/index.html", "not ours");
    let r = s.run(&["build", ".", "-o", "www"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("not a bootc output tree"), "{}", r.stderr);
    assert_eq!(s.read("www/index.html"), "not ours");
}

#[test]
fn explain_names_the_fetch_chain() {
    let s = Site::fixture("basic");
    let r = s.run(&["explain", ".", "52-54-00-AA-BB-12"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    insta::assert_snapshot!(r.stdout);
    let by_name = s.run(&["explain", "node02"]);
    assert_eq!(by_name.code, 0);
    assert!(by_name.stdout.contains("machines/52-54-00-aa-bb-02.ipxe"));
    let unknown = s.run(&["explain", "node2"]);
    assert_eq!(unknown.code, 1);
    assert!(
        unknown.stderr.contains("did you mean `node02`?"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn every_image_form_snapshot() {
    let s = Site::fixture("forms");
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    for (name, mac) in [
        ("remote_kernel", "02-00-00-00-00-01"),
        ("iso_sanboot", "02-00-00-00-00-02"),
        ("iso_memdisk", "02-00-00-00-00-03"),
        ("chain_local", "02-00-00-00-00-04"),
        ("chain_live", "02-00-00-00-00-05"),
        ("local_disk", "02-00-00-00-00-06"),
        ("script_override", "02-00-00-00-00-07"),
    ] {
        insta::assert_snapshot!(
            format!("form_{name}"),
            s.out(&format!("http/machines/{mac}.ipxe"))
        );
    }
    insta::assert_snapshot!("form_fallback_menu", s.out("http/fallback.ipxe"));
    // The chained local script is copied content-addressed, byte for byte.
    let menu = fs::read(s.path("artifacts/menu.ipxe")).unwrap();
    let hash = blake3::hash(&menu).to_hex();
    assert_eq!(
        fs::read(s.path(&format!("public/http/images/{hash}/menu.ipxe"))).unwrap(),
        menu
    );
    // The role that needs a machine is left out of the menu, with a warning.
    assert!(
        r.stderr.contains(
            "warning[menu-role-left-out]: role `custom` is left out of the fallback menu"
        ),
        "{}",
        r.stderr
    );
    let manifest: serde_json::Value = serde_json::from_str(&s.out("http/manifest.json")).unwrap();
    let remote = manifest["remote"].as_array().unwrap();
    assert_eq!(remote.len(), 3, "{remote:?}");
}

#[test]
fn site_templates_override_built_ins() {
    let s = Site::fixture("basic");
    s.write(
        "templates/boot.ipxe.j2",
        "#!ipxe\n# our own entry for {{ site.name }}\nchain machines/${mac:hexhyp}.ipxe\n",
    );
    assert_eq!(s.build().code, 0);
    assert_eq!(
        s.out("http/boot.ipxe"),
        "#!ipxe\n# our own entry for fixture\nchain machines/${mac:hexhyp}.ipxe\n"
    );
}

#[test]
fn machine_url_needs_base_url() {
    let s = Site::fixture("forms");
    s.write("templates/f.j2", "{{ machine.url }}\n");
    s.edit(
        "roles/disk.toml",
        "image = \"disk\"",
        "image = \"disk\"\nfiles = { \"f\" = \"f.j2\" }",
    );
    let r = s.build();
    assert_eq!(r.code, 1);
    assert!(
        r.errors().contains("`machine.url` is undefined"),
        "{}",
        r.stderr
    );
    s.edit(
        "bootc.toml",
        "name = \"forms\"",
        "name = \"forms\"\nbase-url = \"http://boot.lab/x\"",
    );
    assert_eq!(s.build().code, 0);
    assert_eq!(
        s.out("http/machines/dsk/f"),
        "http://boot.lab/x/machines/dsk/\n"
    );
}

#[test]
fn github_annotations_use_repository_paths() {
    let repo = tempfile::tempdir().unwrap();
    let site = repo.path().join("boot/site");
    crate::harness::copy_dir(&crate::harness::fixtures().join("basic"), &site);
    fs::create_dir(repo.path().join(".git")).unwrap();
    let text = fs::read_to_string(site.join("roles/base.toml")).unwrap();
    fs::write(
        site.join("roles/base.toml"),
        text.replace("\"linux\"", "\"linx\""),
    )
    .unwrap();
    let r: crate::harness::Run = bootc()
        .args(["check", "--format", "github", "boot/site"])
        .current_dir(repo.path())
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.starts_with("::error file=boot/site/roles/base.toml,line=2,col=9,title=bootc::image `linx` does not exist"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("::warning file=boot/site/bootc.toml,line=18,col=12,"),
        "{}",
        r.stdout
    );
}

/// The report's machine index (report/machines.js), parsed.
pub(crate) fn report_index(s: &Site) -> serde_json::Value {
    let js = s.out("report/machines.js");
    let json = js
        .strip_prefix("window.BOOTC_REPORT = ")
        .and_then(|j| j.strip_suffix(";\n"))
        .unwrap_or_else(|| panic!("not the index script: {js}"));
    serde_json::from_str(json).unwrap()
}

#[test]
fn report_lists_roles_and_indexes_machines_and_escapes_html() {
    let s = Site::fixture("basic");
    s.edit(
        "machines/sub/rack2.toml",
        "labels = { rack = \"r2\" }",
        "labels = { rack = \"<b>r2</b>\" }",
    );
    s.write("roles/spare.toml", "image = \"disk\"\n");
    assert_eq!(s.build().code, 0);
    let html = s.out("report/index.html");
    for role in ["id=\"role-worker\"", "id=\"role-disk\""] {
        assert!(html.contains(role), "{role} missing");
    }
    assert!(
        html.contains("rack=&lt;b&gt;r2&lt;&#x2f;b&gt;")
            || html.contains("rack=&lt;b&gt;r2&lt;/b&gt;"),
        "label not escaped"
    );
    assert!(!html.contains("<b>r2</b>"));
    assert!(
        html.contains("role `spare` is not used by any machine"),
        "warnings belong on the report"
    );
    let index = report_index(&s);
    let names: Vec<&str> = index["machines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m[0].as_str().unwrap())
        .collect();
    assert_eq!(names, ["node01", "node02", "node03"]);
    // In the script, `</` cannot end an HTML script element.
    let js = s.out("report/machines.js");
    assert!(
        js.contains("rack=<\\/b>") || js.contains("<b>r2<\\/b>"),
        "{js}"
    );
    assert!(!js.contains("</"), "{js}");
}
#[test]
fn label_values_may_be_numbers_and_booleans() {
    let s = Site::fixture("basic");
    s.edit(
        "machines/sub/rack2.toml",
        "labels = { rack = \"r2\" }",
        "labels = { rack = 2, spare = true }",
    );
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let plan: serde_json::Value = serde_json::from_str(&s.out("plan.json")).unwrap();
    let node03 = plan["machines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "node03")
        .unwrap();
    assert_eq!(
        node03["labels"],
        serde_json::json!({ "rack": "2", "spare": "true" })
    );
}

/// The page stays the same size whatever the fleet: 510 more machines
/// add nothing to report/index.html but their label and role counts; the
/// index has every machine, none left out.
#[test]
fn report_page_does_not_grow_with_the_fleet() {
    let s = Site::fixture("basic");
    // Without [dhcp]: no warning per machine without an address.
    let conf = s.read("bootc.toml");
    let dhcp = conf.find("[dhcp]").unwrap()..conf.find("[ipxe]").unwrap();
    s.write("bootc.toml", &conf.replace(&conf[dhcp], ""));
    assert_eq!(s.build().code, 0);
    let small = s.out("report/index.html").len();
    let mut text = String::from("[defaults]\nrole = \"disk\"\n");
    for i in 0..510 {
        text.push_str(&format!(
            "\n[[machine]]\nname = \"big{i}\"\nmac = \"02:00:00:00:{:02x}:{:02x}\"\n",
            i / 256,
            i % 256
        ));
    }
    s.write("machines/big.toml", &text);
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let html = s.out("report/index.html");
    assert!(html.contains("<b id=\"count-machines\">513</b>"));
    assert!(
        html.contains("<td>511 machines</td>"),
        "the role's row counts them all"
    );
    assert!(
        !html.contains("big509"),
        "no machine is listed in the page itself"
    );
    assert!(
        html.len() < small + 1024,
        "{} bytes, {small} with 3 machines",
        html.len()
    );
    assert_eq!(report_index(&s)["machines"].as_array().unwrap().len(), 513);
}

#[test]
fn every_mac_form_of_the_spec_names_the_same_script() {
    let s = Site::fixture("basic");
    s.edit("machines/rack1.toml", "52:54:00:aa:bb:01", "5254.00AA.BB01");
    s.edit(
        "machines/sub/rack2.toml",
        "52:54:00:aa:bb:03",
        "525400aabb03",
    );
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    for mac in ["52-54-00-aa-bb-01", "52-54-00-aa-bb-03"] {
        assert!(
            s.path(&format!("public/http/machines/{mac}.ipxe"))
                .is_file(),
            "{mac}"
        );
    }
    let plan: serde_json::Value = serde_json::from_str(&s.out("plan.json")).unwrap();
    assert!(plan.to_string().contains("\"52:54:00:aa:bb:01\""));
}
