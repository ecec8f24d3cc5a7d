//! Store functions on a real SQLite file and a real PostgreSQL database.

use std::collections::HashMap;

use agency_sso::config::DbKind;
use agency_sso::domain::identity::Admitted;
use agency_sso::domain::session::SignedIn;
use agency_sso::store::sessions::{
    count_for_person, DbSessionStore, EXPIRY_SLACK_SECS, SIGNED_IN_KEY,
};
use agency_sso::store::{people, Db};
use tower_sessions::session::{Id, Record};
use tower_sessions::{ExpiredDeletion, SessionStore};

use crate::on_both_databases;
use crate::support::{fresh_database, Backend};

on_both_databases!(
    people_are_created_then_refreshed,
    disabling_ends_sessions_in_the_same_transaction,
    session_records_round_trip_and_expire,
    migrations_are_idempotent,
    a_database_from_before_the_connector_profile_keeps_its_sites_and_grants,
);

async fn db(backend: Backend, dir: &tempfile::TempDir) -> Db {
    let url = fresh_database(backend, dir.path()).await;
    let kind = match backend {
        Backend::Sqlite => DbKind::Sqlite,
        Backend::Postgres => DbKind::Postgres,
    };
    Db::connect(&url, kind).await.unwrap()
}

fn ann(admin: bool) -> Admitted {
    Admitted {
        issuer: "https://idp.test".into(),
        subject: "ann-1".into(),
        email: "ann@agency.test".into(),
        name: Some("Ann".into()),
        given_name: Some("Ann".into()),
        family_name: None,
        bootstrap_admin: admin,
    }
}

async fn people_are_created_then_refreshed(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = db(backend, &dir).await;
    let first = people::record_sign_in(&db.pool, &ann(false), "id-1", 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.id, "id-1");
    assert_eq!(first.created_at, 100);
    assert!(!first.is_admin && !first.disabled);

    // Same (issuer, subject): same person, new profile, id kept.
    let mut renamed = ann(false);
    renamed.email = "ann.b@agency.test".into();
    renamed.name = Some("Ann B".into());
    let again = people::record_sign_in(&db.pool, &renamed, "id-2", 200)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.id, "id-1");
    assert_eq!(again.email, "ann.b@agency.test");
    assert_eq!(again.name.as_deref(), Some("Ann B"));
    assert_eq!(again.created_at, 100);
    assert_eq!(again.last_sign_in_at, Some(200));

    // The bootstrap list counts at creation only: a later sign-in neither
    // promotes nor demotes (the console decides).
    assert!(
        !people::record_sign_in(&db.pool, &ann(true), "id-3", 300)
            .await
            .unwrap()
            .unwrap()
            .is_admin
    );
    let mut boss = ann(true);
    boss.subject = "boss-subject".into();
    boss.email = "boss@agency.test".into();
    let boss = people::record_sign_in(&db.pool, &boss, "id-4", 400)
        .await
        .unwrap()
        .unwrap();
    assert!(boss.is_admin, "a bootstrap admin's first sign-in");
    let mut again = ann(false);
    again.subject = "boss-subject".into();
    again.email = "boss@agency.test".into();
    assert!(
        people::record_sign_in(&db.pool, &again, "id-5", 450)
            .await
            .unwrap()
            .unwrap()
            .is_admin
    );

    // Another issuer with the same subject is another person.
    let mut other = ann(false);
    other.issuer = "https://other-idp.test".into();
    let o = people::record_sign_in(&db.pool, &other, "id-6", 500)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(o.id, "id-6");
    assert_eq!(people::list(&db).await.unwrap().len(), 3);
    assert_eq!(
        people::find_by_email(&db, "ANN@agency.test")
            .await
            .unwrap()
            .len(),
        2,
        "same address at two providers"
    );
    assert!(people::find(&db, "missing").await.unwrap().is_none());
}

fn record(person: Option<&str>, expires_at: i64) -> Record {
    let mut data = HashMap::new();
    if let Some(p) = person {
        let s = SignedIn {
            person_id: p.into(),
            signed_in_at: 1,
            reauthenticated_at: None,
        };
        data.insert(SIGNED_IN_KEY.to_string(), serde_json::to_value(s).unwrap());
    }
    Record {
        id: Id::default(),
        data,
        expiry_date: time::OffsetDateTime::from_unix_timestamp(expires_at).unwrap(),
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn disabling_ends_sessions_in_the_same_transaction(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = db(backend, &dir).await;
    let p = people::record_sign_in(&db.pool, &ann(false), "id-1", 100)
        .await
        .unwrap()
        .unwrap();
    let store = DbSessionStore::new(db.clone());
    for _ in 0..3 {
        store
            .create(&mut record(Some(&p.id), now() + 3600))
            .await
            .unwrap();
    }
    let mut anonymous = record(None, now() + 3600);
    store.create(&mut anonymous).await.unwrap();
    assert_eq!(count_for_person(&db, &p.id, now()).await.unwrap(), 3);

    let mut conn = db.pool.acquire().await.unwrap();
    assert_eq!(
        people::set_disabled(&mut conn, &p.id, true).await.unwrap(),
        Some(3)
    );
    assert_eq!(count_for_person(&db, &p.id, now()).await.unwrap(), 0);
    assert!(people::find(&db, &p.id).await.unwrap().unwrap().disabled);
    assert!(
        store.load(&anonymous.id).await.unwrap().is_some(),
        "others untouched"
    );

    assert_eq!(
        people::set_disabled(&mut conn, &p.id, false).await.unwrap(),
        Some(0)
    );
    assert!(!people::find(&db, &p.id).await.unwrap().unwrap().disabled);
    assert_eq!(
        people::set_disabled(&mut conn, "nobody", true)
            .await
            .unwrap(),
        None
    );
}

async fn session_records_round_trip_and_expire(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = db(backend, &dir).await;
    let store = DbSessionStore::new(db.clone());
    let mut live = record(None, now() + 600);
    live.data
        .insert("k".into(), serde_json::json!({"v": [1, 2]}));
    store.create(&mut live).await.unwrap();
    let loaded = store.load(&live.id).await.unwrap().unwrap();
    assert_eq!(loaded.data, live.data);
    assert_eq!(
        loaded.expiry_date.unix_timestamp(),
        live.expiry_date.unix_timestamp()
    );

    // A create that collides with a live id draws a new id instead of overwriting.
    let mut clash = record(None, now() + 600);
    clash.id = live.id;
    store.create(&mut clash).await.unwrap();
    assert_ne!(clash.id, live.id);
    assert_eq!(store.load(&live.id).await.unwrap().unwrap().data, live.data);

    let mut stale = record(None, now() - 1);
    store.create(&mut stale).await.unwrap();
    assert!(
        store.load(&stale.id).await.unwrap().is_none(),
        "expired is not loaded"
    );
    store.delete_expired().await.unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sessions")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(n, 2, "only the expired one was deleted");

    store.delete(&live.id).await.unwrap();
    assert!(store.load(&live.id).await.unwrap().is_none());

    // A request still holding the ended session cannot bring it back by saving.
    store.save(&live).await.unwrap();
    assert!(
        store.load(&live.id).await.unwrap().is_none(),
        "no resurrection"
    );

    // A record the caller has just read from its row (a launch reads its
    // session with its facts) is handed to that session's next load, once,
    // without reading the row again; one taken back is not served.
    let mut fresh = record(None, now() + 600);
    fresh.data.insert("k".into(), serde_json::json!("fresh"));
    store.create(&mut fresh).await.unwrap();
    let key = agency_sso::store::sessions::stored_id(&fresh.id);
    let (stored, expires_at): (String, i64) =
        sqlx::query_as("SELECT record, expires_at FROM sessions WHERE id = $1")
            .bind(&key)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    let id = fresh.id;
    store.prime(id, &stored, expires_at).unwrap();
    // The row goes: only the primed copy can answer the load.
    sqlx::query("DELETE FROM sessions WHERE id = $1")
        .bind(&key)
        .execute(&db.pool)
        .await
        .unwrap();
    assert_eq!(store.load(&id).await.unwrap().unwrap().data, fresh.data);
    assert!(store.load(&id).await.unwrap().is_none(), "served once");
    store.prime(id, &stored, expires_at).unwrap();
    store.unprime(&id);
    assert!(store.load(&id).await.unwrap().is_none(), "taken back");
    assert!(store.prime(id, "{not a record", expires_at).is_err());

    // Saving a live session updates it.
    let mut again = record(None, now() + 600);
    store.create(&mut again).await.unwrap();
    again.data.insert("k".into(), serde_json::json!(2));
    store.save(&again).await.unwrap();
    assert_eq!(store.load(&again.id).await.unwrap().unwrap().data["k"], 2);

    // A request that changed nothing does not rewrite the row only to move
    // the inactivity expiry by a few seconds; a larger move, or any change
    // of the data, is written.
    let stored_expiry = |id: Id| {
        let pool = db.pool.clone();
        async move {
            let (at,): (i64,) = sqlx::query_as("SELECT expires_at FROM sessions WHERE id = $1")
                .bind(agency_sso::store::sessions::stored_id(&id))
                .fetch_one(&pool)
                .await
                .unwrap();
            at
        }
    };
    let mut seen = store.load(&again.id).await.unwrap().unwrap();
    let first = seen.expiry_date.unix_timestamp();
    seen.expiry_date += time::Duration::seconds(EXPIRY_SLACK_SECS - 5);
    store.save(&seen).await.unwrap();
    assert_eq!(
        stored_expiry(again.id).await,
        first,
        "a small move is not written"
    );
    seen.expiry_date += time::Duration::seconds(10);
    store.save(&seen).await.unwrap();
    let moved = seen.expiry_date.unix_timestamp();
    assert_eq!(
        stored_expiry(again.id).await,
        moved,
        "a move past the slack is written"
    );
    seen.expiry_date += time::Duration::seconds(1);
    seen.data.insert("k".into(), serde_json::json!(3));
    store.save(&seen).await.unwrap();
    assert_eq!(store.load(&again.id).await.unwrap().unwrap().data["k"], 3);
    assert_eq!(
        stored_expiry(again.id).await,
        moved + 1,
        "a data change is written at once"
    );

    // A move of the expiry alone leaves the stored data as it is: another
    // request (here another instance's store) that changed the data since
    // this one read it keeps its change, and the load gives the row's expiry.
    let other = DbSessionStore::new(db.clone());
    let mut theirs = other.load(&again.id).await.unwrap().unwrap();
    theirs.data.insert("k".into(), serde_json::json!("theirs"));
    other.save(&theirs).await.unwrap();
    seen.expiry_date += time::Duration::seconds(EXPIRY_SLACK_SECS + 1);
    store.save(&seen).await.unwrap();
    let now_stored = store.load(&again.id).await.unwrap().unwrap();
    assert_eq!(now_stored.data["k"], "theirs", "not written back");
    assert_eq!(
        now_stored.expiry_date.unix_timestamp(),
        seen.expiry_date.unix_timestamp(),
        "the expiry moved"
    );
}

async fn migrations_are_idempotent(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(backend, dir.path()).await;
    let kind = match backend {
        Backend::Sqlite => DbKind::Sqlite,
        Backend::Postgres => DbKind::Postgres,
    };
    let first = Db::connect(&url, kind).await.unwrap();
    people::record_sign_in(&first.pool, &ann(false), "id-1", 1)
        .await
        .unwrap()
        .unwrap();
    first.pool.close().await;
    let second = Db::connect(&url, kind).await.unwrap();
    assert_eq!(
        people::list(&second).await.unwrap().len(),
        1,
        "data survives a restart"
    );
}

async fn a_database_from_before_the_connector_profile_keeps_its_sites_and_grants(backend: Backend) {
    use sqlx::Executor;
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(backend, dir.path()).await;
    let (kind, mut old) = match backend {
        Backend::Sqlite => (DbKind::Sqlite, sqlx::migrate!("migrations/sqlite")),
        Backend::Postgres => (DbKind::Postgres, sqlx::migrate!("migrations/postgres")),
    };
    // The schema as migration 5 left it, with a site and a grant in it.
    old.migrations = std::borrow::Cow::Owned(
        old.migrations
            .iter()
            .filter(|m| m.version < 6)
            .cloned()
            .collect(),
    );
    sqlx::any::install_default_drivers();
    let create = if kind == DbKind::Sqlite {
        "?mode=rwc"
    } else {
        ""
    };
    let pool = sqlx::AnyPool::connect(&format!("{url}{create}"))
        .await
        .unwrap();
    old.run(&pool).await.unwrap();
    pool.execute(
        "INSERT INTO sites (id, name, client, url, profile, login_template, username_claim, \
         signing, roles, token_lifetime, created_at, updated_at) VALUES ('s1', 'Blog', 'Acme', \
         'https://blog.acme.example', 'twl-sso', '/wp-login.php?action=twl_sso&token={token}', \
         'username', 'RS256', 'administrator editor', 60, 1, 1)",
    )
    .await
    .unwrap();
    pool.execute(
        "INSERT INTO grants (id, email, site_id, role, created_at, created_by) \
         VALUES ('g1', 'sam@agency.test', 's1', 'editor', 1, 'test')",
    )
    .await
    .unwrap();
    pool.close().await;

    // Opened by this version: migration 6 runs, and nothing is lost (on
    // SQLite, rebuilding the table would have cascaded to the grants).
    let db = Db::connect(&url, kind).await.unwrap();
    let sites = agency_sso::store::sites::list(&db).await.unwrap();
    assert_eq!(sites.len(), 1);
    assert_eq!(sites[0].profile.as_str(), "twl-sso");
    let grants = agency_sso::store::grants::list(&db, None, None)
        .await
        .unwrap();
    assert_eq!(grants.len(), 1, "the grant survives the migration");
    // Every connection of the pool takes the new profile, and still refuses others.
    for _ in 0..3 {
        db.pool
            .execute("UPDATE sites SET profile = 'connector' WHERE id = 's1'")
            .await
            .unwrap();
    }
    let bogus = db
        .pool
        .execute("UPDATE sites SET profile = 'bogus' WHERE id = 's1'")
        .await;
    assert!(bogus.is_err(), "the profile is still checked");
    assert_eq!(
        agency_sso::store::sites::list(&db).await.unwrap()[0]
            .profile
            .as_str(),
        "connector"
    );
}
