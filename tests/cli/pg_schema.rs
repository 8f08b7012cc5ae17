//! notifyctl's schema on PostgreSQL: what `init` creates is what `schema.postgres.sql`
//! documents, it stays inside the schema `notifyctl`, it works for a role that only owns
//! the database (and with btree_gist already installed elsewhere), and a role given only
//! the privileges the README lists can run everything else. PostgreSQL only: each test
//! returns at once (after one line on stderr) on a machine without it.

use crate::pgcluster;
use crate::support::{run_on_postgres, Env};

/// The catalog of schema `notifyctl`, as comparable lines: relations, columns (type, not
/// null, default, identity), constraints, indexes, triggers and our own functions (not
/// the extension's).
fn catalog(env: &Env) -> Vec<String> {
    let mut client = env.pg();
    client
        .batch_execute("SET search_path = pg_catalog")
        .expect("search_path");
    let queries = [
        "SELECT 'relation ' || c.relname || ' ' || c.relkind::text
           FROM pg_class c
          WHERE c.relnamespace = 'notifyctl'::regnamespace
            AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                            AND d.objid = c.oid AND d.deptype = 'e')
          ORDER BY 1",
        "SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                || ' notnull=' || a.attnotnull || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-')
                || ' identity=' || a.attidentity::text || ' #' || a.attnum
           FROM pg_attribute a
           JOIN pg_class c ON c.oid = a.attrelid
           LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
          WHERE c.relnamespace = 'notifyctl'::regnamespace AND c.relkind = 'r'
            AND a.attnum > 0 AND NOT a.attisdropped
          ORDER BY 1",
        "SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
           FROM pg_constraint WHERE connamespace = 'notifyctl'::regnamespace ORDER BY 1",
        "SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'notifyctl' ORDER BY 1",
        "SELECT 'trigger ' || pg_get_triggerdef(t.oid)
           FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
          WHERE c.relnamespace = 'notifyctl'::regnamespace AND NOT t.tgisinternal ORDER BY 1",
        "SELECT 'function ' || pg_get_functiondef(p.oid)
           FROM pg_proc p
          WHERE p.pronamespace = 'notifyctl'::regnamespace
            AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                            AND d.objid = p.oid AND d.deptype = 'e')
          ORDER BY 1",
    ];
    let mut lines = Vec::new();
    for q in queries {
        for row in client.query(q, &[]).unwrap_or_else(|e| panic!("{q}: {e:?}")) {
            lines.push(row.get::<_, String>(0));
        }
    }
    lines
}

/// Everything in the database outside the schema `notifyctl` (and the system's own).
fn outside(env: &Env) -> Vec<String> {
    let mut client = env.pg();
    client
        .query(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname NOT IN ('notifyctl', 'pg_catalog', 'information_schema', 'pg_toast')
             UNION ALL
             SELECT n.nspname || '.' || p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname NOT IN ('notifyctl', 'pg_catalog', 'information_schema')
             UNION ALL
             SELECT 'schema ' || nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'
             ORDER BY 1",
            &[],
        )
        .expect("objects")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn the_steps_give_the_schema_that_schema_postgres_sql_documents() {
    run_on_postgres(|| {
        let migrated = Env::new();
        let documented = Env::bare();
        documented.exec(include_str!("../../schema.postgres.sql"));
        let (a, b) = (catalog(&migrated), catalog(&documented));
        assert!(a.len() > 80, "the catalog was read: {a:#?}");
        assert_eq!(a, b);
        // Running init again changes nothing.
        assert_eq!(migrated.json(&["init"])["created"], false);
        assert_eq!(catalog(&migrated), a);
    });
}

#[test]
fn nothing_outside_the_schema_is_created() {
    run_on_postgres(|| {
        let env = Env::bare();
        let mut before = outside(&env);
        before.push("schema notifyctl".into());
        before.sort();
        env.ok(&["init"]);
        assert_eq!(outside(&env), before);
        let extension: String = env
            .pg()
            .query_one(
                "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'btree_gist'",
                &[],
            )
            .expect("btree_gist installed")
            .get(0);
        assert_eq!(extension, "notifyctl");
    });
}

#[test]
fn btree_gist_already_installed_elsewhere_is_used() {
    run_on_postgres(|| {
        let env = Env::bare();
        env.exec("CREATE EXTENSION btree_gist WITH SCHEMA public");
        env.ok(&["init"]);
        env.ok(&["user", "add", "--email", "ana@example.org", "--name", "Ana"]);
        env.ok(&[
            "event",
            "add",
            "--title",
            "A",
            "--start",
            "2030-03-10T09:00:00Z",
            "--participant",
            "1",
        ]);
        let err = env.fails(
            &[
                "event",
                "add",
                "--title",
                "B",
                "--start",
                "2030-03-10T09:30:00Z",
                "--participant",
                "1",
            ],
            2,
        );
        assert!(err.contains("already booked"), "{err}");
        let err = env
            .try_exec(
                "WITH e AS (INSERT INTO events (title, starts_at, ends_at)
                            VALUES ('app', '2030-03-10T09:15:00Z', '2030-03-10T09:45:00Z') RETURNING id)
                 INSERT INTO participants (event_id, user_id) SELECT id, 1 FROM e",
            )
            .expect_err("the constraint binds the app");
        assert!(err.contains("23P01"), "{err}");
    });
}

/// A role that owns its database and nothing else (no superuser, no CREATEROLE) runs
/// `init`; a role with only the README's grants runs everything after it.
#[test]
fn the_database_owner_runs_init_and_a_role_with_the_readme_grants_runs_the_rest() {
    run_on_postgres(|| {
        let Some(pg) = pgcluster::cluster().filter(|c| c.is_own()) else {
            return;
        };
        let mut admin = pg.admin();
        let n = std::process::id();
        let (owner, app, db) = (format!("owner_{n}"), format!("app_{n}"), format!("owned_{n}"));
        admin
            .batch_execute(&format!("CREATE ROLE {owner} LOGIN; CREATE ROLE {app} LOGIN"))
            .expect("roles");
        // (CREATE DATABASE cannot share a statement batch: that is a transaction.)
        admin
            .batch_execute(&format!("CREATE DATABASE {db} OWNER {owner}"))
            .expect("database");
        let url_of = |role: &str| pg.database_url(&db).replacen("postgres@", &format!("{role}@"), 1);
        let mut env = Env::bare();
        env.pg_url = Some(url_of(&owner));
        assert_eq!(env.json(&["init"])["created"], true);
        // The README's grants, as the owner gives them (identity columns need none on
        // their sequences).
        env.exec(&format!(
            "GRANT USAGE ON SCHEMA notifyctl TO {app};
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA notifyctl TO {app};"
        ));
        env.pg_url = Some(url_of(&app));
        env.at("2030-03-09T09:00:00Z");
        env.ok(&["init"]);
        env.user("ana@example.org", &[]);
        env.ok(&[
            "event",
            "add",
            "--title",
            "Call",
            "--start",
            "2030-03-10T10:00:00Z",
            "--participant",
            "1",
        ]);
        env.ok(&["event", "update", "1", "--start", "2030-03-10T11:00:00Z"]);
        env.at("2030-03-10T10:30:00Z");
        let s = env.tick();
        assert_eq!(s["created"], 1, "{s}");
        env.ok(&["prune", "--older-than", "1d"]);
        // The app role cannot change the schema itself.
        let err = env
            .try_exec("DROP TABLE notifyctl.ticks")
            .expect_err("not the owner");
        assert!(err.contains("42501"), "{err}");
    });
}

#[test]
fn a_schema_notifyctl_that_is_not_ours_is_refused_and_left_alone() {
    run_on_postgres(|| {
        let env = Env::bare();
        env.exec("CREATE SCHEMA notifyctl; CREATE TABLE notifyctl.users (login text);");
        let err = env.fails(&["init"], 2);
        assert!(err.contains("already has a table named users"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        let columns: i64 = env
            .pg()
            .query_one(
                "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'notifyctl'",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(columns, 1, "left as it was");
    });
}

#[test]
fn a_schema_newer_than_the_binary_is_refused() {
    run_on_postgres(|| {
        let env = Env::new();
        env.exec("INSERT INTO schema_migrations (version) VALUES (99)");
        let err = env.fails(&["user", "list"], 2);
        assert!(
            err.contains("schema version 99") && err.contains("upgrade notifyctl"),
            "{err}"
        );
    });
}

#[test]
fn the_schema_version_is_the_same_contract_as_sqlite() {
    run_on_postgres(|| {
        let env = Env::bare();
        let pg = env.json(&["init"])["schema_version"].clone();
        let db = env.path("v.db");
        let sqlite = env.json(&["--db", db.to_str().unwrap(), "init"])["schema_version"].clone();
        assert_eq!(pg, sqlite);
    });
}

/// A database at an older version is brought forward by the steps it lacks, to exactly
/// the schema a new one gets.
#[test]
fn a_version_3_schema_is_brought_forward() {
    run_on_postgres(|| {
        let old = Env::bare();
        old.exec(include_str!(
            "../../src/store/postgres/migrations/003_initial.sql"
        ));
        old.exec("INSERT INTO notifyctl.schema_migrations (version) VALUES (3)");
        let v = old.json(&["init"]);
        assert_eq!(v["created"], false);
        assert_eq!(v["schema_version"], notifyctl::store::postgres::SCHEMA_VERSION);
        assert_eq!(catalog(&old), catalog(&Env::new()));
    });
}
