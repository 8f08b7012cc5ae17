use crate::support::Env;

#[test]
fn add_prints_the_id_and_json_shape() {
    let env = Env::new();
    assert_eq!(
        env.ok(&["user", "add", "--email", "ana@example.org", "--name", "Ana"])
            .trim(),
        "1"
    );
    let v = env.json(&[
        "user",
        "add",
        "--email",
        "bob@example.com",
        "--name",
        "Bob",
        "--tz",
        "America/New_York",
        "--locale",
        "en",
    ]);
    assert_eq!(v["id"], 2);
    let bob = env.json(&["user", "show", "bob@example.com"]);
    assert_eq!(bob["timezone"], "America/New_York");
    assert_eq!(bob["locale"], "en");
    assert_eq!(bob["email_enabled"], true);
    let list = env.json(&["user", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
}

#[test]
fn users_are_named_by_id_or_email_case_insensitively() {
    let env = Env::new();
    env.user("ana@example.org", &[]);
    assert_eq!(env.json(&["user", "show", "1"])["email"], "ana@example.org");
    assert_eq!(env.json(&["user", "show", "ANA@example.org"])["id"], 1);
}

#[test]
fn update_and_remove() {
    let env = Env::new();
    env.user("ana@example.org", &[]);
    let v = env.json(&[
        "user",
        "update",
        "ana@example.org",
        "--tz",
        "Europe/Paris",
        "--locale",
        "en",
        "--email-notices",
        "off",
    ]);
    assert_eq!(v["timezone"], "Europe/Paris");
    assert_eq!(v["email_enabled"], false);
    let v = env.json(&["user", "update", "1", "--tz", "default"]);
    assert!(v["timezone"].is_null());
    env.ok(&["user", "remove", "ana@example.org"]);
    let err = env.fails(&["user", "show", "ana@example.org"], 2);
    assert!(err.contains("unknown user 'ana@example.org'"), "{err}");
}

#[test]
fn bad_input_is_refused_with_one_line_and_nothing_written() {
    let env = Env::new();
    env.user("ana@example.org", &[]);
    let before = env.dump();
    for (args, expect) in [
        (
            vec!["--email", "not-an-email", "--name", "X"],
            "invalid email address 'not-an-email'",
        ),
        (
            vec!["--email", "x@example.org", "--name", "X", "--tz", "Mars/Olympus"],
            "unknown time zone 'Mars/Olympus'",
        ),
        (
            vec!["--email", "x@example.org", "--name", "X", "--locale", "de"],
            "unknown locale 'de'",
        ),
        (
            vec!["--email", "ANA@example.org", "--name", "X"],
            "already exists",
        ),
        (vec!["--email", "x@example.org", "--name", "  "], "needs a name"),
    ] {
        let mut all = vec!["user", "add"];
        all.extend(args);
        let err = env.fails(&all, 2);
        assert!(err.contains(expect), "{all:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    assert_eq!(env.dump(), before);
    env.fails(&["user", "update", "nobody@example.org", "--name", "N"], 2);
}

crate::support::on_postgres!(
    add_prints_the_id_and_json_shape,
    users_are_named_by_id_or_email_case_insensitively,
    update_and_remove,
    bad_input_is_refused_with_one_line_and_nothing_written,
);
