use crate::support::Env;

fn setup() -> Env {
    let mut env = Env::new();
    env.at("2030-03-01T08:00:00Z");
    env.user("ana@example.org", &[]);
    env.user("bob@example.com", &[]);
    for i in 1..=3 {
        env.ok(&[
            "send",
            "--user",
            "ana@example.org",
            "--title",
            &format!("Note {i}"),
            "--body",
            "Hello",
        ]);
    }
    env.ok(&[
        "send",
        "--user",
        "bob@example.com",
        "--title",
        "For Bob",
        "--body",
        "Hi",
        "--no-email",
    ]);
    env
}

#[test]
fn list_is_newest_first_with_the_contract_fields() {
    let env = setup();
    let v = env.json(&["list", "--user", "ana@example.org"]);
    let items = v.as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["title"], "Note 3");
    for key in [
        "id",
        "user_id",
        "user_email",
        "kind",
        "title",
        "body",
        "event_id",
        "offset_minutes",
        "created_at",
        "read_at",
    ] {
        assert!(items[0].get(key).is_some(), "missing {key}");
    }
    assert_eq!(items[0]["kind"], "custom");
    assert_eq!(items[0]["created_at"], "2030-03-01T08:00:00Z");
    assert_eq!(
        env.json(&["list", "--user", "1", "--limit", "2"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        env.json(&["list", "--user", "1", "--type", "reminder"])
            .as_array()
            .unwrap()
            .len(),
        0
    );
    env.fails(&["list", "--user", "1", "--type", "spam"], 2);
}

#[test]
fn read_state_and_badge() {
    let mut env = setup();
    assert_eq!(
        env.json(&["unread-count", "--user", "ana@example.org"]),
        serde_json::json!({"user_id": 1, "unread": 3})
    );
    env.at("2030-03-01T09:00:00Z");
    env.ok(&["mark-read", "1", "2"]);
    assert_eq!(env.ok(&["unread-count", "--user", "1"]).trim(), "1");
    let n = env.json(&["show", "1"]);
    assert_eq!(n["read_at"], "2030-03-01T09:00:00Z");
    assert_eq!(
        env.json(&["list", "--user", "1", "--unread"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    env.ok(&["mark-unread", "1"]);
    assert!(env.json(&["show", "1"])["read_at"].is_null());
    env.ok(&["mark-read", "--all", "--user", "ana@example.org"]);
    assert_eq!(env.json(&["unread-count", "--user", "1"])["unread"], 0);
    assert_eq!(
        env.json(&["unread-count", "--user", "2"])["unread"],
        1,
        "other users untouched"
    );
}

#[test]
fn unknown_ids_change_nothing() {
    let env = setup();
    let before = env.dump();
    let err = env.fails(&["mark-read", "1", "999"], 2);
    assert!(err.contains("unknown notification 999"), "{err}");
    env.fails(&["delete", "2", "998"], 2);
    env.fails(&["show", "999"], 2);
    assert_eq!(env.dump(), before);
}

#[test]
fn delete_and_clear_read() {
    let env = setup();
    // Emails of Ana's notes are pending: clear-read keeps notices whose email has not gone.
    env.ok(&["mark-read", "1", "2"]);
    assert_eq!(env.json(&["clear-read", "--user", "1"])["changed"], 0);
    env.tick();
    assert_eq!(env.json(&["clear-read", "--user", "1"])["changed"], 2);
    env.ok(&["delete", "3"]);
    assert_eq!(env.json(&["list", "--user", "1"]).as_array().unwrap().len(), 0);
    assert_eq!(env.json(&["list", "--user", "2"]).as_array().unwrap().len(), 1);
}

#[test]
fn send_no_email_is_in_app_only() {
    let env = setup();
    let deliveries = env.json(&["deliveries"]);
    assert_eq!(
        deliveries.as_array().unwrap().len(),
        3,
        "only Ana's notes have an email"
    );
    let err = env.fails(
        &[
            "send",
            "--user",
            "nobody@example.org",
            "--title",
            "x",
            "--body",
            "y",
        ],
        2,
    );
    assert!(err.contains("unknown user"), "{err}");
}

crate::support::on_postgres!(
    list_is_newest_first_with_the_contract_fields,
    read_state_and_badge,
    unknown_ids_change_nothing,
    delete_and_clear_read,
    send_no_email_is_in_app_only,
);
