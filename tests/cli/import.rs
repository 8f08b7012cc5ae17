//! Imports as people really feed them: spreadsheet exports, BOMs, quoted cells that span
//! lines, wrong headers, huge cells, double bookings among many other mistakes, and a
//! video provider that must not be charged for a refused file.

use std::time::Duration;

use crate::support::{Env, HttpAnswer, HttpServer};

fn env_with_users() -> Env {
    let mut env = Env::new();
    env.at("2030-03-01T09:00:00Z");
    env.user("ana@example.org", &[]);
    env.user("bob@example.com", &[]);
    env
}

fn write(env: &Env, name: &str, text: &str) {
    std::fs::write(env.path(name), text).unwrap();
}

#[test]
fn a_jsonl_file_with_a_bom_is_read() {
    let env = env_with_users();
    write(
        &env,
        "e.jsonl",
        "\u{feff}{\"title\":\"A\",\"start\":\"2030-03-10T10:00:00Z\",\"participants\":[\"ana@example.org\"]}\n",
    );
    assert_eq!(env.json(&["import", "events", "e.jsonl"])["imported"], 1);
}

#[test]
fn line_numbers_are_lines_even_when_quoted_cells_span_several() {
    let env = env_with_users();
    write(
        &env,
        "e.csv",
        "title,start,participants\n\"Two\nline title\",2030-03-10T10:00:00Z,ana@example.org\nOK,2030-03-10T12:00:00Z,ana@example.org\nBad,tomorrow,ana@example.org\n",
    );
    let err = env.fails(&["import", "events", "e.csv"], 2);
    assert!(err.contains("line 2, field title"), "the multi-line title: {err}");
    assert!(
        err.contains("line 5, field start"),
        "a line number, not a record number: {err}"
    );
}

#[test]
fn a_wrong_header_is_reported_once_not_per_row() {
    let env = env_with_users();
    let mut text = String::from("title,start,participant\n");
    for i in 0..500 {
        text.push_str(&format!("T{i},2030-03-10T10:00:00Z,ana@example.org\n"));
    }
    write(&env, "e.csv", &text);
    let err = env.fails(&["import", "events", "e.csv"], 2);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("unknown column(s) 'participant'") && err.contains("participants"),
        "{err}"
    );
}

#[test]
fn a_huge_bad_cell_is_not_echoed_whole() {
    let env = env_with_users();
    let huge = "x".repeat(10_000_000);
    write(&env, "e.csv", &format!("title,start\nT,{huge}\n"));
    let err = env.fails(&["import", "events", "e.csv"], 2);
    assert!(err.len() < 2000, "{} bytes of error", err.len());
    assert!(
        err.contains("line 2, field start"),
        "{}",
        &err[..err.len().min(300)]
    );
}

#[test]
fn an_end_that_disagrees_with_the_duration_is_refused() {
    let env = env_with_users();
    write(
        &env,
        "e.jsonl",
        "{\"title\":\"A\",\"start\":\"2030-03-10T10:00:00Z\",\"end\":\"2030-03-10T11:00:00Z\",\"duration\":\"30m\"}\n{\"title\":\"B\",\"start\":\"2030-03-11T10:00:00Z\",\"end\":\"2030-03-11T11:00:00Z\",\"duration\":\"1h\"}\n",
    );
    let err = env.fails(&["import", "events", "e.jsonl"], 2);
    assert!(
        err.contains("line 1, field end") && err.contains("disagree"),
        "{err}"
    );
    assert!(!err.contains("line 2"), "an end that agrees is fine: {err}");
}

#[test]
fn double_bookings_are_reported_with_every_other_mistake_in_one_run() {
    let env = env_with_users();
    env.ok(&[
        "event",
        "add",
        "--title",
        "Existing",
        "--start",
        "2030-03-10T10:00:00Z",
        "--participant",
        "ana@example.org",
    ]);
    write(
        &env,
        "e.csv",
        "title,start,duration,participants\n\
         Clash with the database,2030-03-10T10:30:00Z,1h,ana@example.org\n\
         Bad time,someday,1h,bob@example.com\n\
         First,2030-03-12T10:00:00Z,1h,bob@example.com\n\
         Clash within the file,2030-03-12T10:30:00Z,1h,bob@example.com\n\
         Nobody,2030-03-13T10:00:00Z,1h,nobody@example.org\n",
    );
    let before = env.dump();
    let err = env.fails(&["import", "events", "e.csv"], 2);
    for line in ["line 2", "line 3", "line 5", "line 6"] {
        assert!(err.contains(line), "{line} reported: {err}");
    }
    assert!(!err.contains("line 4"), "{err}");
    assert!(err.contains("4 bad row(s)"), "{err}");
    assert_eq!(env.dump(), before, "nothing written");
}

/// Regression test for the import's deferred double-booking check (rows are checked
/// against the database as they are written and against one another in one sweep at the
/// end, then, for a refused file, written again row by row): the report is the row-by-row
/// one. A row refused for a clash does not block later rows; back-to-back events and
/// cancelled events do not clash; nested and identical ones do; a row with a clash and
/// another mistake reports the clash met first; the event named is the earliest clashing
/// one, from the database or from the file.
#[test]
fn overlaps_within_the_file_and_with_the_database_are_reported_row_by_row() {
    let env = env_with_users();
    env.user("cy@example.net", &[]);
    let add = |title: &str, start: &str, duration: &str, who: &str| {
        env.ok(&[
            "event",
            "add",
            "--title",
            title,
            "--start",
            start,
            "--duration",
            duration,
            "--participant",
            who,
        ]);
    };
    add("Existing", "2030-03-10T10:00:00Z", "1h", "ana@example.org");
    add("Called off", "2030-03-10T10:00:00Z", "1h", "bob@example.com");
    env.ok(&["event", "cancel", "2"]);
    add("Cy existing", "2030-03-14T11:00:00Z", "1h", "cy@example.net");
    write(
        &env,
        "e.csv",
        "title,start,duration,participants\n\
         After existing,2030-03-10T11:00:00Z,1h,ana@example.org\n\
         Over the cancelled,2030-03-10T10:00:00Z,1h,bob@example.com\n\
         Long,2030-03-12T09:00:00Z,4h,ana@example.org\n\
         Nested,2030-03-12T10:00:00Z,1h,ana@example.org;cy@example.net\n\
         Cy alone,2030-03-12T10:00:00Z,1h,cy@example.net\n\
         Identical,2030-03-12T09:00:00Z,4h,bob@example.com;ana@example.org\n\
         Bob again,2030-03-12T09:00:00Z,4h,bob@example.com\n\
         Back to back in file,2030-03-12T13:00:00Z,1h,ana@example.org\n\
         Clash and nobody,2030-03-12T13:30:00Z,1h,ana@example.org;nobody@example.org\n\
         Earliest named,2030-03-10T10:30:00Z,2h,ana@example.org\n\
         Cy early,2030-03-14T09:00:00Z,1h,cy@example.net\n\
         Cy wide,2030-03-14T09:30:00Z,3h,cy@example.net\n",
    );
    let before = env.dump();
    let err = env.fails(&["import", "events", "e.csv"], 2);
    assert!(err.contains("5 bad row(s)"), "{err}");
    let line = |n: usize| -> &str {
        let prefix = format!("line {n}, field start: ");
        err.lines()
            .find(|l| l.contains(&prefix))
            .unwrap_or_else(|| panic!("line {n} reported as a clash: {err}"))
    };
    assert!(
        line(5)
            .contains("ana@example.org is already booked from 2030-03-12T09:00:00Z to 2030-03-12T13:00:00Z")
            && line(5).contains("'Long'"),
        "nested: {err}"
    );
    assert!(
        line(7).contains("ana@example.org") && line(7).contains("'Long'"),
        "identical: {err}"
    );
    assert!(
        line(10).contains("'Back to back in file'") && !line(10).contains("nobody"),
        "the clash met first: {err}"
    );
    assert!(
        line(11).contains("'Existing'"),
        "the earliest, from the database: {err}"
    );
    assert!(
        line(13).contains("'Cy early'"),
        "the earliest, from the file: {err}"
    );
    for fine in [2, 3, 4, 6, 8, 9, 12] {
        assert!(
            !err.contains(&format!("line {fine},")),
            "line {fine} is fine: {err}"
        );
    }
    assert_eq!(env.dump(), before, "nothing written");
}

/// The same regression, for a file that is written: every row, checked against the
/// database and the other rows; afterwards the imported slots are taken (for `event add`
/// and for the same file imported again, every row of which is refused).
#[test]
fn an_import_without_clashes_is_written_whole_and_then_guards_its_slots() {
    let env = env_with_users();
    env.user("cy@example.net", &[]);
    env.ok(&[
        "event",
        "add",
        "--title",
        "Existing",
        "--start",
        "2030-03-10T10:00:00Z",
        "--participant",
        "ana@example.org",
    ]);
    env.ok(&["event", "cancel", "1"]);
    let mut text = String::from("title,start,duration,participants\n");
    // Participants taking turns, back to back, over the cancelled event.
    for i in 0..60 {
        let (who, first_day) = match i % 3 {
            0 => ("ana@example.org;bob@example.com", 10),
            1 => ("cy@example.net", 10),
            _ => ("cy@example.net:mentor;ana@example.org", 20),
        };
        let (day, hour) = (first_day + i / 30, 8 + i / 3 % 10);
        text.push_str(&format!("Row {i},2030-03-{day}T{hour:02}:00:00Z,1h,{who}\n"));
    }
    write(&env, "e.csv", &text);
    assert_eq!(env.json(&["import", "events", "e.csv"])["imported"], 60);
    if !env.is_postgres() {
        // The busy index filled at the end (more than one statement's worth of entries) is
        // the one the schema's triggers build.
        let conn = env.sql();
        let index = |conn: &rusqlite::Connection| -> Vec<(i64, i64, i64, i64)> {
            conn.prepare("SELECT s.event_id, s.user_id, b.hour_lo, b.hour_hi FROM busy_slots s JOIN busy_index b ON b.id = s.id ORDER BY 1, 2")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let filled = index(&conn);
        assert_eq!(filled.len(), 100);
        conn.execute_batch("BEGIN; UPDATE events SET starts_at = starts_at || '', ends_at = ends_at || ''")
            .unwrap();
        assert_eq!(index(&conn), filled);
        conn.execute_batch("ROLLBACK").unwrap();
    }
    let err = env.fails(
        &[
            "event",
            "add",
            "--title",
            "Clash",
            "--start",
            "2030-03-10T08:30:00Z",
            "--participant",
            "bob@example.com",
        ],
        2,
    );
    assert!(err.contains("already booked") && err.contains("'Row 0'"), "{err}");
    env.ok(&[
        "event",
        "add",
        "--title",
        "Back to back",
        "--start",
        "2030-03-10T07:00:00Z",
        "--participant",
        "bob@example.com",
    ]);
    let before = env.dump();
    let err = env.fails(&["import", "events", "e.csv"], 2);
    assert!(err.contains("60 bad row(s)"), "every row refused: {err}");
    assert_eq!(env.dump(), before, "nothing written");
}

#[test]
fn spreadsheet_leftovers_are_tolerated() {
    let env = env_with_users();
    write(
        &env,
        "e.csv",
        "title,start,participants,,\nA,2030-03-10T10:00:00Z,ana@example.org,,\n,,,,\nB,2030-03-11T10:00:00Z,bob@example.com,,\n,,,,\n",
    );
    assert_eq!(env.json(&["import", "events", "e.csv"])["imported"], 2);
}

/// A Whereby stand-in that creates meetings and counts them.
fn whereby(env: &mut Env) -> HttpServer {
    let api = HttpServer::scripted(vec![HttpAnswer {
        status: 201,
        body: "{\"roomUrl\":\"https://whereby.example/room\",\"meetingId\":\"m-1\"}".into(),
        delay: Duration::ZERO,
        headers: Vec::new(),
    }]);
    env.env("WHEREBY_KEY", "k");
    env.config(&format!(
        "[video]\nprovider = \"whereby\"\nwhereby_api_url = \"{}\"\nwhereby_api_key_env = \"WHEREBY_KEY\"\n",
        api.url("/v1")
    ));
    api
}

fn created(api: &HttpServer) -> usize {
    api.requests().iter().filter(|r| r.method == "POST").count()
}

fn deleted(api: &HttpServer) -> usize {
    api.requests().iter().filter(|r| r.method == "DELETE").count()
}

/// Regression: a refused import had already created one (paid) meeting per good row, and
/// `event add` refused for a double booking created one too.
#[test]
fn no_video_meeting_is_left_for_what_was_not_written() {
    let mut env = env_with_users();
    let api = whereby(&mut env);
    let mut text = String::from("title,start,participants\n");
    for i in 0..20 {
        text.push_str(&format!("T{i},2030-04-{:02}T10:00:00Z,ana@example.org\n", i + 1));
    }
    text.push_str("Bad,never,ana@example.org\n");
    write(&env, "e.csv", &text);
    env.fails(&["import", "events", "e.csv"], 2);
    assert_eq!(created(&api), 0, "no meeting for a refused file");
    // A file refused only in the write (a double booking) gets its meetings deleted.
    env.ok(&[
        "event",
        "add",
        "--title",
        "Existing",
        "--start",
        "2030-05-01T10:00:00Z",
        "--participant",
        "ana@example.org",
        "--video",
        "none",
    ]);
    write(
        &env,
        "f.csv",
        "title,start,participants\nA,2030-05-02T10:00:00Z,ana@example.org\nB,2030-05-01T10:30:00Z,ana@example.org\n",
    );
    env.fails(&["import", "events", "f.csv"], 2);
    assert_eq!(created(&api), deleted(&api), "every meeting made was deleted");
    // event add refused for a double booking makes no meeting at all.
    let before = created(&api);
    env.fails(
        &[
            "event",
            "add",
            "--title",
            "Clash",
            "--start",
            "2030-05-01T10:15:00Z",
            "--participant",
            "1",
        ],
        2,
    );
    assert_eq!(created(&api), before);
    // A good import gets one meeting per row.
    write(&env, "g.csv", "title,start,participants\nA,2030-06-01T10:00:00Z,ana@example.org\nB,2030-06-02T10:00:00Z,bob@example.com\n");
    let before = created(&api);
    assert_eq!(env.json(&["import", "events", "g.csv"])["imported"], 2);
    assert_eq!(created(&api) - before, 2);
    let shown = env.json(&["event", "list", "--from", "2030-06-01T00:00:00Z"]);
    assert_eq!(shown[0]["video_url"], "https://whereby.example/room");
}

/// The import writes in bulk with the schema's triggers suspended inside its transaction;
/// they are back afterwards, whether it committed or was refused, and the double-booking
/// index it kept directly is the one the triggers keep.
#[test]
fn after_an_import_the_schemas_guards_are_back_and_the_index_is_whole() {
    let env = env_with_users();
    let triggers = |env: &Env| -> i64 {
        env.sql()
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    let before = triggers(&env);
    assert!(before >= 10);
    write(&env, "bad.csv", "title,start,participants\nA,2030-03-10T10:00:00Z,ana@example.org\nB,2030-03-10T10:30:00Z,ana@example.org\n");
    env.fails(&["import", "events", "bad.csv"], 2);
    assert_eq!(triggers(&env), before, "after a refused import");
    write(&env, "good.csv", "title,start,participants\nA,2030-03-10T10:00:00Z,ana@example.org;bob@example.com\nB,2030-03-11T10:00:00Z,ana@example.org\n");
    assert_eq!(env.json(&["import", "events", "good.csv"])["imported"], 2);
    assert_eq!(triggers(&env), before, "after a good one");
    let conn = env.sql();
    let index: Vec<(i64, i64, i64, i64)> = conn
        .prepare("SELECT s.event_id, s.user_id, b.hour_lo, b.hour_hi FROM busy_slots s JOIN busy_index b ON b.id = s.id ORDER BY 1, 2")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    // Rebuilt by the triggers (an update of each event's times fires them): the same.
    conn.execute_batch("UPDATE events SET starts_at = starts_at || '', ends_at = ends_at || ''")
        .unwrap();
    let rebuilt: Vec<(i64, i64, i64, i64)> = conn
        .prepare("SELECT s.event_id, s.user_id, b.hour_lo, b.hour_hi FROM busy_slots s JOIN busy_index b ON b.id = s.id ORDER BY 1, 2")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(index.len(), 3);
    assert_eq!(index, rebuilt);
    // The instants guard works again on the app's own writes.
    let err = conn
        .execute_batch("UPDATE events SET starts_at = 'later', ends_at = 'whenever' WHERE id = 1")
        .unwrap_err()
        .to_string();
    assert!(err.contains("events.starts_at must be a time"), "{err}");
}

crate::support::on_postgres!(
    a_jsonl_file_with_a_bom_is_read,
    line_numbers_are_lines_even_when_quoted_cells_span_several,
    a_wrong_header_is_reported_once_not_per_row,
    a_huge_bad_cell_is_not_echoed_whole,
    an_end_that_disagrees_with_the_duration_is_refused,
    double_bookings_are_reported_with_every_other_mistake_in_one_run,
    overlaps_within_the_file_and_with_the_database_are_reported_row_by_row,
    an_import_without_clashes_is_written_whole_and_then_guards_its_slots,
    spreadsheet_leftovers_are_tolerated,
    no_video_meeting_is_left_for_what_was_not_written,
);
// SQLite-only: after_an_import_the_schemas_guards_are_back_and_the_index_is_whole (the
// triggers and the R*Tree index are SQLite's).
