//! `bootc diff` and the pull-request review around it.
//!
//! BASE is `tests/fixtures/diff`; each test copies it twice into one
//! temporary folder (`base/`, `head/`), edits `head/`, and runs
//! `bootc diff base head` there, snapshotting all three formats. Then: built
//! trees as sides, `git:REV` against a real repository, `--exit-code`,
//! invalid sides, grouping at scale, GitHub annotations of a broken site,
//! and the GitHub workflows (they parse, and every `bootc` command they run
//! exists).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{Run, bootc, copy_dir, cpio, fixtures};

/// `base/` and `head/`, two copies of the diff fixture.
struct Pair {
    dir: tempfile::TempDir,
}

impl Pair {
    fn new() -> Pair {
        let dir = tempfile::Builder::new()
            .prefix("bootc-diff-")
            .tempdir()
            .unwrap();
        copy_dir(&fixtures().join("diff"), &dir.path().join("base"));
        copy_dir(&fixtures().join("diff"), &dir.path().join("head"));
        Pair { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    fn write(&self, rel: &str, text: impl AsRef<[u8]>) -> &Self {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
        self
    }

    /// Replaces the one occurrence of `from` in `head/<rel>`.
    fn edit(&self, rel: &str, from: &str, to: &str) -> &Self {
        let rel = format!("head/{rel}");
        let text = self.read(&rel);
        assert_eq!(text.matches(from).count(), 1, "{rel}: {from:?}");
        self.write(&rel, text.replacen(from, to, 1))
    }

    fn run(&self, args: &[&str]) -> Run {
        bootc()
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap()
            .into()
    }

    fn diff(&self, format: &str) -> Run {
        self.run(&["diff", "base", "head", "--format", format])
    }

    /// Snapshots the three formats; returns the human one.
    fn snapshots(&self, name: &str) -> String {
        let mut human = String::new();
        for format in ["human", "markdown", "json"] {
            let r = self.diff(format);
            assert_eq!(r.code, 0, "{}", r.stderr);
            assert_eq!(r.stderr, "", "diff prints nothing else on stderr");
            if format == "json" {
                let _: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
            }
            insta::assert_snapshot!(format!("{name}.{format}"), r.stdout);
            if format == "human" {
                human = r.stdout;
            }
        }
        human
    }
}

fn json(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
}

#[test]
fn no_change() {
    let p = Pair::new();
    let human = p.snapshots("no_change");
    assert!(human.ends_with("\nno change\n"), "{human}");
    assert_eq!(p.run(&["diff", "base", "head", "--exit-code"]).code, 0);
    let j = json(&p.diff("json"));
    assert_eq!(j["changed"], false);
}

#[test]
fn role_change() {
    let p = Pair::new();
    p.edit(
        "machines/rack1.toml",
        "ip = \"10.77.0.13\"\n",
        "ip = \"10.77.0.13\"\nrole = \"storage\"\n",
    );
    let human = p.snapshots("role_change");
    assert!(
        human.contains(
            "  node03 (rack=r1)\n    role worker -> storage\n    kernel arg changed: bootc.role=worker -> bootc.role=storage\n"
        ),
        "{human}"
    );
    let j = json(&p.diff("json"));
    assert_eq!(j["summary"]["changed"], 1);
    assert_eq!(j["summary"]["role"], 1);
    assert_eq!(j["machines"][0]["name"], "node03");
    assert_eq!(
        j["machines"][0]["changes"][0],
        serde_json::json!({"kind": "role", "old": "worker", "new": "storage"})
    );
}

#[test]
fn new_machine() {
    let p = Pair::new();
    let text = p.read("head/machines/rack1.toml")
        + "\n[[machine]]\nname = \"node05\"\nmac = \"52:54:00:00:01:05\"\nip = \"10.77.0.15\"\n";
    p.write("head/machines/rack1.toml", &text);
    let human = p.snapshots("new_machine");
    assert!(
        human.contains(
            "added:\n  node05 (rack=r1): role worker, image debian-12; 52:54:00:00:01:05, 10.77.0.15\n"
        ),
        "{human}"
    );
    assert!(!human.contains("changed:"), "{human}");
}

#[test]
fn removed_machine() {
    let p = Pair::new();
    let text = p.read("head/machines/rack2.toml");
    let cut = text.rfind("[[machine]]").unwrap();
    p.write("head/machines/rack2.toml", &text[..cut]);
    let human = p.snapshots("removed_machine");
    assert!(
        human.contains(
            "removed:\n  stor02 (rack=r2): role storage, image debian-12; 52:54:00:00:02:02, 10.77.0.22\n"
        ),
        "{human}"
    );
}

#[test]
fn changed_kernel_arg() {
    let p = Pair::new();
    p.edit(
        "images/debian-12.toml",
        "console=ttyS0,115200",
        "console=ttyS1,115200",
    );
    let human = p.snapshots("changed_kernel_arg");
    // One change, six machines: one group, no label in common.
    assert!(
        human.contains(
            "  6 machines: node01..node04, stor01, stor02\n    kernel arg changed: console=ttyS0,115200 -> console=ttyS1,115200\n"
        ),
        "{human}"
    );
}

#[test]
fn changed_local_artifact() {
    let p = Pair::new();
    p.write(
        "head/artifacts/debian-12/linux",
        crate::harness::bzimage(b"debian 12 kernel, patched\n"),
    );
    let human = p.snapshots("changed_local_artifact");
    assert!(
        human.contains("images:\n  debian-12: changed, for 6 machines: node01..node04, stor01, stor02\n    kernel artifacts/debian-12/linux: blake3 "),
        "{human}"
    );
    assert!(
        human.contains("    image debian-12 has new content (see images)\n"),
        "{human}"
    );
}

#[test]
fn changed_per_machine_template() {
    let p = Pair::new();
    p.edit(
        "templates/cloud-init/user-data.yaml.j2",
        "ssh_authorized_keys: []",
        "ssh_authorized_keys: [\"ssh-ed25519 AAAA ops\"]",
    );
    let human = p.snapshots("changed_per_machine_template");
    assert!(
        human.contains(
            "  4 machines (rack=r1): node01..node04\n    file user-data changed: - `ssh_authorized_keys: []`, + `ssh_authorized_keys: [\"ssh-ed25519 AAAA ops\"]`\n"
        ),
        "{human}"
    );
    let j = json(&p.diff("json"));
    assert_eq!(j["summary"]["files"], 4);
    assert_eq!(j["groups"].as_array().unwrap().len(), 1);
}

#[test]
fn addresses_rename_and_labels() {
    let p = Pair::new();
    p.edit(
        "machines/rack2.toml",
        "ip = \"10.77.0.21\"",
        "ip = \"10.77.1.21\"",
    )
    .edit(
        "machines/rack2.toml",
        "\"52:54:00:00:02:11\"",
        "\"52:54:00:00:02:12\"",
    )
    .edit(
        "machines/rack1.toml",
        "name = \"node04\"",
        "name = \"node44\"",
    )
    .edit(
        "machines/rack2.toml",
        "ip = \"10.77.0.22\"",
        "ip = \"10.77.0.22\"\nlabels = { row = \"b\" }",
    );
    let human = p.snapshots("addresses_rename_and_labels");
    assert!(
        human.contains(
            "  machines changing: role 0, image 0, kernel args 1, files 1, addresses 1, renamed 1\n"
        ),
        "{human}"
    );
    assert!(
        human.contains("  1 machine changes only labels (not listed)\n"),
        "{human}"
    );
    assert!(
        human.contains("  stor01 (rack=r2)\n    MAC changed: 52:54:00:00:02:11 -> 52:54:00:00:02:12\n    IP changed: 10.77.0.21 -> 10.77.1.21\n"),
        "{human}"
    );
    // The rename is found by MAC: one machine renamed, not one removed and
    // one added; its hostname argument and cloud-init file follow.
    assert!(
        human.contains("  node44 (rack=r1)\n    renamed from node04\n    kernel arg changed: hostname=node04 -> hostname=node44\n    file user-data changed: - `hostname: node04`, + `hostname: node44`\n"),
        "{human}"
    );
    assert!(
        !human.contains("stor02"),
        "labels only: not listed\n{human}"
    );
}

#[test]
fn script_templates_and_site_files() {
    let p = Pair::new();
    let builtin = "#!ipxe\n# site {{ site.name }}\nchain --autofree machines/${mac:hexhyp}.ipxe || chain --autofree fallback.ipxe\n";
    p.write("head/templates/boot.ipxe.j2", builtin);
    p.write(
        "head/templates/machine.ipxe.j2",
        "#!ipxe\necho {{ machine.name }}: {{ boot.args }}\n{% include \"boot-commands.ipxe.j2\" %}\n:bootc-failed\nshell\n",
    );
    p.edit("bootc.toml", "fallback = \"local\"", "fallback = \"shell\"");
    let human = p.snapshots("script_templates_and_site_files");
    assert!(
        human.contains("site:\n  fallback: local -> shell\n  http/boot.ipxe changed\n  http/fallback.ipxe changed\n"),
        "{human}"
    );
    assert!(
        human.contains("  6 machines: node01..node04, stor01, stor02\n    iPXE script changed beyond what the plan shows (a script template?)\n"),
        "{human}"
    );
}

/// The same diff whether a side is a site or the tree built from it: the
/// plan is the interface.
#[test]
fn built_trees_compare_like_sites() {
    let p = Pair::new();
    p.edit(
        "machines/rack1.toml",
        "ip = \"10.77.0.13\"\n",
        "ip = \"10.77.0.13\"\nrole = \"storage\"\n",
    )
    .write("head/artifacts/debian-12/initrd.gz", cpio("new initrd\n"));
    for side in ["base", "head"] {
        let r = p.run(&["build", side, "-o", &format!("{side}-tree")]);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    for format in ["human", "markdown", "json"] {
        let sites = p.run(&["diff", "base", "head", "--format", format]);
        let trees = p.run(&["diff", "base-tree", "head-tree", "--format", format]);
        let mixed = p.run(&["diff", "base-tree/plan.json", "head", "--format", format]);
        assert_eq!(trees.code, 0, "{}", trees.stderr);
        assert_eq!(mixed.code, 0, "{}", mixed.stderr);
        assert_eq!(
            sites.stdout,
            trees
                .stdout
                .replace("base-tree", "base")
                .replace("head-tree", "head"),
            "{format}"
        );
        assert_eq!(
            sites.stdout,
            mixed.stdout.replace("base-tree/plan.json", "base"),
            "{format}"
        );
    }
}

#[test]
fn exit_code_reports_changes() {
    let p = Pair::new();
    assert_eq!(p.run(&["diff", "base", "head", "--exit-code"]).code, 0);
    p.edit(
        "machines/rack1.toml",
        "ip = \"10.77.0.11\"",
        "ip = \"10.77.0.31\"",
    );
    assert_eq!(p.run(&["diff", "base", "head"]).code, 0);
    let r = p.run(&["diff", "base", "head", "--exit-code", "--format", "json"]);
    assert_eq!(r.code, 1);
    assert_eq!(json(&r)["changed"], true);
    // Only labels: still a change to the plan.
    let q = Pair::new();
    q.edit("machines/rack2.toml", "rack = \"r2\"", "rack = \"r3\"");
    let r = q.run(&["diff", "base", "head", "--exit-code"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout.contains("2 machines change only labels"),
        "{}",
        r.stdout
    );
}

#[test]
fn invalid_sides_print_their_errors_and_exit_1() {
    let p = Pair::new();
    p.edit(
        "roles/base.toml",
        "image = \"debian-12\"",
        "image = \"debian-21\"",
    );
    fs::write(p.path("base/roles/storage.toml"), "extends = \"bsae\"\n").unwrap();
    let r = p.diff("human");
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout, "");
    assert!(
        r.stderr.contains("error: BASE base is not a valid site"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("error: HEAD head is not a valid site"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("image `debian-21` does not exist"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("--> roles/base.toml:2:9"), "{}", r.stderr);
    assert!(
        !r.stderr.contains("warning:") && !r.stderr.contains("warning["),
        "only errors\n{}",
        r.stderr
    );
}

#[test]
fn usage_errors_exit_2() {
    let p = Pair::new();
    let r = p.run(&["diff", "base", "nowhere"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("HEAD nowhere: no such file or folder"),
        "{}",
        r.stderr
    );
    fs::create_dir(p.path("empty")).unwrap();
    let r = p.run(&["diff", "empty", "head"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("is neither a site"), "{}", r.stderr);
    let r = p.run(&["diff", "base", "head", "--format", "yaml"]);
    assert_eq!(r.code, 2);
    // git: outside any repository.
    let r = p.run(&["diff", "git:HEAD", "head"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("not inside a git repository"),
        "{}",
        r.stderr
    );
}

/// A plan.json that bootc did not write (any JSON, another format) is a
/// usage error, not an empty fleet to compare.
#[test]
fn foreign_plan_json_is_refused() {
    let p = Pair::new();
    let r = p.run(&["build", "base", "-o", "tree"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let good = p.read("tree/plan.json");
    let mut doc: serde_json::Value = serde_json::from_str(&good).unwrap();
    doc["format"] = serde_json::json!(7);
    let other_format = serde_json::to_string_pretty(&doc).unwrap();
    let mut cases = Vec::new();
    for (name, text) in [
        (
            "random",
            r#"{"name": "left-pad", "version": "1.3.0"}"#.to_string(),
        ),
        ("empty", "{}".to_string()),
        ("array", "[1, 2, 3]".to_string()),
        ("other-format", other_format),
        (
            "machines-not-a-list",
            r#"{"site": "x", "fallback": "local", "images": {}, "machines": {"a": 1}}"#.to_string(),
        ),
        ("not-json", "site = \"x\"\n".to_string()),
    ] {
        p.write(&format!("{name}/plan.json"), &text);
        let r = p.run(&["diff", name, "head"]);
        assert_eq!(r.code, 2, "{name}: {}\n{}", r.stdout, r.stderr);
        assert_eq!(r.stdout, "", "{name}");
        let r2 = p.run(&["diff", "head", &format!("{name}/plan.json")]);
        assert_eq!(r2.code, 2, "{name}: {}", r2.stderr);
        cases.push(format!("{name}: {}", r.stderr.trim_end()));
    }
    insta::assert_snapshot!("diff_foreign_plan_json", cases.join("\n"));
    // bootc's own plan still compares.
    let r = p.run(&["diff", "tree", "head"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // A tree's plan.json that is a link (to a plan outside) is refused.
    fs::create_dir(p.path("linked")).unwrap();
    std::os::unix::fs::symlink(p.path("tree/plan.json"), p.path("linked/plan.json")).unwrap();
    let r = p.run(&["diff", "linked", "head"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("linked/plan.json: a symbolic link; bootc reads a tree's own plan.json only"),
        "{}",
        r.stderr
    );
}

/// 40 machines of rack r12 move to Debian 13: one line, whatever the size.
#[test]
fn large_changes_are_grouped() {
    let p = Pair::new();
    for (side, role12) in [("base", "worker"), ("head", "worker13")] {
        for (rack, n, role) in [(12, 40, role12), (13, 30, "worker")] {
            let mut t = format!(
                "[defaults]\nrole = \"{role}\"\nlabels = {{ rack = \"r{rack}\", room = \"dc1\" }}\n"
            );
            for i in 1..=n {
                t.push_str(&format!(
                    "\n[[machine]]\nname = \"n{rack}{i:02}\"\nmac = \"52:54:00:00:{rack}:{i:02x}\"\nip = \"10.77.{rack}.{i}\"\n"
                ));
            }
            p.write(&format!("{side}/machines/r{rack}.toml"), &t);
        }
    }
    p.write(
        "head/roles/worker13.toml",
        "extends = \"worker\"\nimage = \"debian-13\"\n",
    );
    // And every machine of rack r13 gets a new address, each its own.
    let r13 = p
        .read("head/machines/r13.toml")
        .replace("ip = \"10.77.13.", "ip = \"10.78.13.");
    p.write("head/machines/r13.toml", &r13);
    let human = p.snapshots("large_changes_are_grouped");
    assert!(
        human.contains("  40 machines (rack=r12, room=dc1): n1201..n1240\n    role worker -> worker13\n    image debian-12 -> debian-13\n    kernel arg changed: bootc.role=worker -> bootc.role=worker13\n"),
        "{human}"
    );
    assert!(
        human.contains("  30 machines (rack=r13, room=dc1): n1301..n1330\n    IP changed\n      n1301: IP 10.77.13.1 -> 10.78.13.1\n"),
        "{human}"
    );
    assert!(human.contains("      and 25 more\n"), "{human}");
    let j = json(&p.diff("json"));
    assert_eq!(
        j["machines"].as_array().unwrap().len(),
        70,
        "JSON lists every machine"
    );
}

/// Many different changes: the human and markdown outputs stay bounded.
#[test]
fn many_groups_are_capped() {
    let p = Pair::new();
    for (side, arg) in [("base", "a"), ("head", "b")] {
        let mut t = String::from("[defaults]\nrole = \"worker\"\n");
        for i in 0..200 {
            t.push_str(&format!(
                "\n[[machine]]\nname = \"m{i:03}\"\nmac = \"52:54:00:01:{:02x}:{:02x}\"\nkernel-args = [\"x{}={arg}\"]\n",
                i / 256,
                i % 256,
                i % 60
            ));
        }
        p.write(&format!("{side}/machines/many.toml"), &t);
    }
    let human = p.diff("human").stdout;
    let md = p.diff("markdown").stdout;
    assert!(
        human.contains("  and 105 more machines in 35 smaller groups (kernel args 105; --format json lists every one)\n"),
        "{human}"
    );
    assert!(human.lines().count() < 150, "{human}");
    assert!(md.len() < 20_000, "{md}");
    let j = json(&p.diff("json"));
    assert_eq!(j["groups"].as_array().unwrap().len(), 60);
}

// ---------------------------------------------------------------------------
// git:REV

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn has_git() -> bool {
    let ok = Command::new("git").arg("--version").output().is_ok();
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "git is missing"
        );
        eprintln!("skipped: git is missing");
    }
    ok
}

#[test]
fn git_revisions_of_a_temporary_repository() {
    if !has_git() {
        return;
    }
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    let site = root.join("boot/lab");
    copy_dir(&fixtures().join("diff"), &site);
    // Artifacts are often kept out of git: the revisions do not have them.
    fs::write(root.join(".gitignore"), "artifacts/\npublic/\n").unwrap();
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["add", "."]);
    git(root, &["commit", "-q", "-m", "first"]);
    let rack1 = site.join("machines/rack1.toml");
    let text = fs::read_to_string(&rack1).unwrap();
    fs::write(
        &rack1,
        text.replace(
            "ip = \"10.77.0.13\"\n",
            "ip = \"10.77.0.13\"\nrole = \"storage\"\n",
        ),
    )
    .unwrap();
    git(root, &["commit", "-q", "-am", "node03 becomes storage"]);
    // Uncommitted work: in the working tree only.
    fs::write(
        &rack1,
        text.replace("ip = \"10.77.0.11\"", "ip = \"10.77.0.41\""),
    )
    .unwrap();
    let status = git(root, &["status", "--porcelain"]);
    let head = git(root, &["rev-parse", "HEAD"]);
    let index = fs::read(root.join(".git/index")).unwrap();

    let run = |dir: &Path, args: &[&str]| -> Run {
        bootc().args(args).current_dir(dir).output().unwrap().into()
    };
    // From the site's folder: the site is the current folder.
    let r = run(
        &site,
        &["diff", "git:HEAD~1", "git:HEAD", "--format", "json"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j = json(&r);
    assert_eq!(j["summary"]["changed"], 1, "{}", r.stdout);
    assert_eq!(j["machines"][0]["name"], "node03");
    assert!(
        j["base"]["label"]
            .as_str()
            .unwrap()
            .starts_with("git:HEAD~1 ("),
        "{j}"
    );
    assert!(
        r.stderr
            .contains("using the working tree's artifacts/ (ignored by git"),
        "{}",
        r.stderr
    );
    // From a folder inside the site: the site holding it.
    let r = run(&site.join("machines"), &["diff", "git:HEAD~1", "git:HEAD"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("  node03 (rack=r1)\n"), "{}", r.stdout);
    // From the repository's root, with the site's path.
    let r = run(root, &["diff", "git:main~1:boot/lab", "git:main:boot/lab"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("  node03 (rack=r1)\n    role worker -> storage\n"),
        "{}",
        r.stdout
    );
    // A revision against the working tree: only the uncommitted change.
    let r = run(root, &["diff", "git:HEAD", "boot/lab", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j = json(&r);
    assert_eq!(j["machines"][0]["name"], "node01", "{j}");
    assert_eq!(
        j["machines"][0]["changes"][0],
        serde_json::json!({"kind": "ip", "old": "10.77.0.11", "new": "10.77.0.41"})
    );
    // Nothing in the repository moved.
    assert_eq!(git(root, &["status", "--porcelain"]), status);
    assert_eq!(git(root, &["rev-parse", "HEAD"]), head);
    assert_eq!(fs::read(root.join(".git/index")).unwrap(), index);
    assert_eq!(
        fs::read_to_string(&rack1).unwrap(),
        text.replace("ip = \"10.77.0.11\"", "ip = \"10.77.0.41\"")
    );
    // Mistakes: exit 2, with what is wrong.
    let r = run(&site, &["diff", "git:nosuchrev", "git:HEAD"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("nosuchrev is not a commit"),
        "{}",
        r.stderr
    );
    let r = run(root, &["diff", "git:HEAD:boot/nolab", "git:HEAD:boot/lab"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("boot/nolab does not exist at HEAD"),
        "{}",
        r.stderr
    );
    let r = run(root, &["diff", "git:HEAD", "boot/lab/roles"]);
    assert_eq!(r.code, 2);
}

// ---------------------------------------------------------------------------
// GitHub annotations

/// Every problem of a broken site as one annotation, with paths from the
/// repository's root: the whole output, exactly.
#[test]
fn check_github_annotations_of_a_broken_site() {
    let repo = tempfile::tempdir().unwrap();
    let site = repo.path().join("boot/lab");
    copy_dir(&fixtures().join("diff"), &site);
    fs::create_dir(repo.path().join(".git")).unwrap();
    let edit = |rel: &str, from: &str, to: &str| {
        let p = site.join(rel);
        let t = fs::read_to_string(&p).unwrap();
        assert_eq!(t.matches(from).count(), 1);
        fs::write(&p, t.replacen(from, to, 1)).unwrap();
    };
    edit(
        "machines/rack1.toml",
        "mac = \"52:54:00:00:01:02\"",
        "mac = \"52:54:00:00:01:01\"",
    );
    edit("images/debian-13.toml", "description", "descripton");
    edit(
        "templates/cloud-init/user-data.yaml.j2",
        "ssh_authorized_keys: []",
        "ssh_authorized_keys: {{ vars.keys }}",
    );
    edit(
        "machines/rack2.toml",
        "ip = \"10.77.0.22\"",
        "ip = \"10.77.0.300\"",
    );
    let r: Run = bootc()
        .args(["check", "--format", "github", "boot/lab"])
        .current_dir(repo.path())
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 1, "{}", r.stderr);
    insta::assert_snapshot!("github_annotations", r.stdout);
    for line in r.stdout.lines() {
        assert!(
            line.starts_with("::error file=boot/lab/")
                || line.starts_with("::warning file=boot/lab/")
                || line.starts_with("::notice file=boot/lab/"),
            "{line}"
        );
        assert!(!line.contains('\n'));
    }
}

// ---------------------------------------------------------------------------
// Workflows

fn workflows() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in [".github/workflows", "site.example/.github/workflows"] {
        let mut files: Vec<PathBuf> = fs::read_dir(root.join(dir))
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
            .collect();
        assert!(!files.is_empty(), "{dir} has no workflow");
        files.sort();
        out.extend(files);
    }
    out
}

/// Every string under a `run:` key of a step.
fn run_scripts(doc: &yaml_rust2::Yaml) -> Vec<String> {
    use yaml_rust2::Yaml;
    let mut out = Vec::new();
    let jobs = doc["jobs"].as_hash().expect("jobs");
    for (name, job) in jobs {
        let steps = job["steps"]
            .as_vec()
            .unwrap_or_else(|| panic!("job {name:?} has no steps"));
        assert!(!job["runs-on"].is_badvalue(), "job {name:?} has no runs-on");
        for step in steps {
            assert!(
                !step["run"].is_badvalue() || !step["uses"].is_badvalue(),
                "a step of {name:?} neither runs nor uses: {step:?}"
            );
            if let Yaml::String(s) = &step["run"] {
                out.push(s.clone());
            }
        }
    }
    out
}

/// `bootc SUB --flags…` invocations in shell text: the subcommand and the
/// long options given to it (on that line, continuations joined).
fn bootc_invocations(script: &str) -> Vec<(String, Vec<String>)> {
    let joined = script.replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined.lines() {
        // Text in single quotes is not a command (`echo '<!-- bootc diff -->'`).
        let line: String = line.split('\'').step_by(2).collect::<Vec<_>>().join(" ");
        let words: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || matches!(c, ';' | '|' | '&' | '(' | ')' | '`'))
            .filter(|w| !w.is_empty())
            .collect();
        for (i, w) in words.iter().enumerate() {
            let w = w.trim_matches('"');
            if w != "bootc" && !w.ends_with("/bootc") {
                continue;
            }
            let Some(sub) = words.get(i + 1) else {
                continue;
            };
            if !sub.chars().all(|c| c.is_ascii_lowercase()) {
                continue;
            }
            let flags = words[i + 2..]
                .iter()
                .take_while(|x| **x != "bootc" && !x.ends_with("/bootc"))
                .filter(|x| x.starts_with("--"))
                .map(|x| x.split('=').next().unwrap().to_string())
                .collect();
            out.push((sub.to_string(), flags));
        }
    }
    out
}

#[test]
fn workflows_parse_and_name_only_commands_that_exist() {
    let mut seen: Vec<String> = Vec::new();
    for path in workflows() {
        let text = fs::read_to_string(&path).unwrap();
        let docs = yaml_rust2::YamlLoader::load_from_str(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(docs.len(), 1, "{}", path.display());
        let doc = &docs[0];
        assert!(!doc["on"].is_badvalue(), "{}: no `on`", path.display());
        for script in run_scripts(doc) {
            for (sub, flags) in bootc_invocations(&script) {
                let r: Run = bootc()
                    .args([sub.as_str(), "--help"])
                    .output()
                    .unwrap()
                    .into();
                assert_eq!(
                    r.code,
                    0,
                    "{}: `bootc {sub}` is not a command:\n{}",
                    path.display(),
                    r.stderr
                );
                for f in flags {
                    assert!(
                        r.stdout.contains(&f),
                        "{}: `bootc {sub}` has no option {f}:\n{}",
                        path.display(),
                        r.stdout
                    );
                }
                seen.push(sub);
            }
        }
    }
    // The site workflow does what the review needs.
    for sub in ["check", "build", "diff", "verify", "test"] {
        assert!(
            seen.iter().any(|s| s == sub),
            "no workflow runs `bootc {sub}`: {seen:?}"
        );
    }
}

#[test]
fn invocations_are_found_in_shell_text() {
    let found = bootc_invocations(
        "set -e\necho '<!-- bootc diff -->'\nbootc check --format github\n./bin/bootc diff \"git:$BASE\" git:HEAD \\\n  --format markdown > d.md\ncargo install --locked bootc\necho bootc.pub\n",
    );
    assert_eq!(
        found,
        vec![
            ("check".to_string(), vec!["--format".to_string()]),
            ("diff".to_string(), vec!["--format".to_string()]),
        ]
    );
}

/// A pull request cannot hide a machine from the diff with the commit's own
/// `.gitattributes` (`export-ignore`), nor rewrite a file (`export-subst`):
/// a revision is read as committed.
#[test]
fn git_attributes_of_a_revision_cannot_hide_a_change() {
    if !has_git() {
        return;
    }
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    copy_dir(&fixtures().join("diff"), root);
    fs::write(root.join(".gitignore"), "artifacts/\npublic/\n").unwrap();
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["add", "."]);
    git(root, &["commit", "-q", "-m", "first"]);
    fs::write(
        root.join("machines/evil.toml"),
        "[[machine]]\nname = \"evil\"\nmac = \"52:54:00:aa:bb:66\"\nrole = \"worker\"\nkernel-args = [\"init=/bin/sh\"]\n",
    )
    .unwrap();
    fs::write(
        root.join(".gitattributes"),
        "machines/evil.toml export-ignore\nmachines/*.toml export-subst\n",
    )
    .unwrap();
    git(root, &["add", "."]);
    git(root, &["commit", "-q", "-m", "innocent"]);
    let r: Run = bootc()
        .args(["diff", "git:HEAD~1", "git:HEAD", "--format", "json"])
        .current_dir(root)
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        j["summary"]["added"], 1,
        "the new machine must show: {}",
        r.stdout
    );
    assert_eq!(j["added"][0]["name"], "evil", "{}", r.stdout);
}
