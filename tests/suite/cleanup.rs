//! The cleanup observer on a temporary workspace: old files and the folders they leave empty
//! go, young files stay, each folder has its own age limit, rule files and `_index.yaml` stay
//! however old, symbolic links are neither followed nor deleted through, one run per local day
//! in the user's zone, and a disabled cleanup deletes nothing. File ages are set with
//! `File::set_modified`; the time of day comes from a clock the test sets.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use camino::{Utf8Path, Utf8PathBuf};
use chrono::{DateTime, TimeZone, Utc};
use ductor::core::cleanup::CleanupReport;
use ductor::core::config::Config;
use ductor::observer::cleanup::{Cleanup, CleanupArgs, CleanupMsg};
use ractor::{Actor, ActorRef};

struct Setup {
    _dir: tempfile::TempDir,
    /// Beside the home: where symbolic links point "outside".
    outside: Utf8PathBuf,
    workspace: Utf8PathBuf,
    clock: Arc<Mutex<DateTime<Utc>>>,
    cleanup: ActorRef<CleanupMsg>,
}

/// 03:10 UTC, the default check hour.
fn check_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 3, 10, 0).unwrap()
}

fn config() -> Config {
    let mut config = Config { user_timezone: "UTC".into(), ..Config::default() };
    config.cleanup.enabled = true;
    config.cleanup.check_hour = 3;
    config
}

/// An empty workspace; the observer looks at the clock every `every`.
async fn setup(config: Config, every: Duration) -> Setup {
    setup_with(config, every, |_| {}).await
}

/// The same with `prepare` run on the workspace before the observer starts.
async fn setup_with(config: Config, every: Duration, prepare: impl FnOnce(&Utf8Path)) -> Setup {
    let (dir, home) = crate::support::temp_home();
    let outside = home.parent().unwrap().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let workspace = home.join("workspace");
    std::fs::create_dir_all(&workspace).unwrap();
    prepare(&workspace);
    let clock = Arc::new(Mutex::new(check_time()));
    let now = Arc::clone(&clock);
    let args = CleanupArgs {
        config: Arc::new(config),
        workspace: workspace.clone(),
        every,
        clock: Arc::new(move || *now.lock().unwrap()),
    };
    let (cleanup, _) = Actor::spawn(None, Cleanup, args).await.unwrap();
    Setup { _dir: dir, outside, workspace, clock, cleanup }
}

/// No timer fires during a test (checks come from `CheckNow`).
const NO_TIMER: Duration = Duration::from_secs(3600);

/// Writes a file last modified `days` ago.
fn file(path: &Utf8Path, days: u64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, b"data").unwrap();
    let at = SystemTime::now() - Duration::from_secs(days * 86_400);
    std::fs::File::options().write(true).open(path).unwrap().set_modified(at).unwrap();
}

impl Setup {
    fn ws(&self, rel: &str) -> Utf8PathBuf {
        self.workspace.join(rel)
    }

    async fn check_now(&self) -> Option<CleanupReport> {
        ractor::call!(self.cleanup, CleanupMsg::CheckNow).unwrap()
    }

    fn set_clock(&self, at: DateTime<Utc>) {
        *self.clock.lock().unwrap() = at;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timer_deletes_old_files_and_their_emptied_folders_and_keeps_young_ones() {
    let mut cfg = config();
    cfg.cleanup.media_files_days = 10;
    cfg.cleanup.output_to_user_days = 30;
    cfg.cleanup.api_files_days = 5;
    // The files exist before the observer starts: its first look is its only run today.
    let prepare = |ws: &Utf8Path| {
        file(&ws.join("output_to_user/2020-01-01/x.pdf"), 40);
        file(&ws.join("output_to_user/2026-03-09/y.pdf"), 1);
        file(&ws.join("output_to_user/20-days.txt"), 20);
        file(&ws.join("telegram_files/2026-02-18/20-days.jpg"), 20);
        file(&ws.join("matrix_files/9-days.png"), 9);
        file(&ws.join("api_files/deep/er/6-days.bin"), 6);
        std::fs::create_dir_all(ws.join("output_to_user/already-empty")).unwrap();
    };
    let s = setup_with(cfg, Duration::from_millis(100), prepare).await;

    let deadline = Instant::now() + Duration::from_secs(10);
    while s.ws("output_to_user/2020-01-01/x.pdf").exists() {
        assert!(Instant::now() < deadline, "the old file was never deleted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Checks are handled one after another: this answer comes after the timer's run ended.
    assert_eq!(s.check_now().await, None, "already ran today");
    assert!(!s.ws("output_to_user/2020-01-01").exists(), "its emptied date folder is gone");
    assert!(!s.ws("output_to_user/already-empty").exists(), "empty subfolders are removed");
    assert!(s.ws("output_to_user/2026-03-09/y.pdf").exists(), "a 1-day-old file stays");
    assert!(s.ws("output_to_user/20-days.txt").exists(), "20 days is young for output_to_user (30)");
    assert!(!s.ws("telegram_files/2026-02-18").exists(), "20 days is old for received media (10)");
    assert!(s.ws("matrix_files/9-days.png").exists());
    assert!(!s.ws("api_files/deep").exists(), "nested emptied folders go bottom-up (api_files: 5 days)");
    for folder in ["output_to_user", "telegram_files", "matrix_files", "api_files"] {
        assert!(s.ws(folder).is_dir(), "the folder {folder} itself stays");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_files_and_the_index_stay_however_old() {
    let s = setup(config(), NO_TIMER).await;
    let kept = [
        "output_to_user/CLAUDE.md",
        "output_to_user/AGENTS.md",
        "output_to_user/GEMINI.md",
        "output_to_user/_index.yaml",
        "telegram_files/_index.yaml",
        "telegram_files/2020-01-01/CLAUDE.md",
    ];
    for rel in kept {
        file(&s.ws(rel), 2000);
    }
    file(&s.ws("telegram_files/2020-01-01/photo.jpg"), 2000);
    let report = s.check_now().await.expect("a run at the check hour");
    assert_eq!(report.files_deleted, 1, "{report:?}");
    assert!(!s.ws("telegram_files/2020-01-01/photo.jpg").exists());
    for rel in kept {
        assert!(s.ws(rel).exists(), "{rel} stays");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symbolic_links_are_neither_followed_nor_deleted_through() {
    let s = setup(config(), NO_TIMER).await;
    file(&s.outside.join("secret.txt"), 400);
    file(&s.outside.join("dir/old.txt"), 400);
    file(&s.outside.join("media/old.jpg"), 400);
    std::fs::create_dir_all(s.ws("output_to_user/links")).unwrap();
    std::os::unix::fs::symlink(s.outside.join("secret.txt"), s.ws("output_to_user/links/to-file")).unwrap();
    std::os::unix::fs::symlink(s.outside.join("dir"), s.ws("output_to_user/to-dir")).unwrap();
    // A whole folder that is a link elsewhere is not swept.
    std::os::unix::fs::symlink(s.outside.join("media"), s.ws("telegram_files")).unwrap();
    file(&s.ws("output_to_user/old.pdf"), 400);

    let report = s.check_now().await.expect("a run at the check hour");
    assert_eq!(report.files_deleted, 1, "only the real old file: {report:?}");
    assert!(!s.ws("output_to_user/old.pdf").exists());
    assert!(s.outside.join("secret.txt").exists(), "a link's target is not deleted");
    assert!(s.outside.join("dir/old.txt").exists(), "a linked folder is not entered");
    assert!(s.outside.join("media/old.jpg").exists(), "a linked workspace folder is not swept");
    assert!(s.ws("output_to_user/links/to-file").symlink_metadata().is_ok(), "the link itself stays");
    assert!(s.ws("output_to_user/to-dir").symlink_metadata().is_ok());
    assert!(s.ws("output_to_user/links").is_dir(), "a folder holding a link is not empty");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_one_run_per_local_day_at_the_check_hour_in_the_users_zone() {
    // Tokyo is UTC+9 all year: 03:00 there is 18:00 UTC the day before.
    let mut cfg = config();
    cfg.user_timezone = "Asia/Tokyo".into();
    let s = setup(cfg, NO_TIMER).await;
    file(&s.ws("output_to_user/first.pdf"), 40);
    s.set_clock(Utc.with_ymd_and_hms(2026, 3, 9, 3, 10, 0).unwrap());
    assert_eq!(s.check_now().await, None, "03:10 UTC is 12:10 in Tokyo");
    assert!(s.ws("output_to_user/first.pdf").exists());

    s.set_clock(Utc.with_ymd_and_hms(2026, 3, 9, 18, 10, 0).unwrap());
    let report = s.check_now().await.expect("03:10 on 10 March in Tokyo runs");
    assert_eq!(report.files_deleted, 1);
    assert!(!s.ws("output_to_user/first.pdf").exists());

    file(&s.ws("output_to_user/second.pdf"), 40);
    s.set_clock(Utc.with_ymd_and_hms(2026, 3, 9, 18, 50, 0).unwrap());
    assert_eq!(s.check_now().await, None, "the same local day, the same hour: no second run");
    s.set_clock(Utc.with_ymd_and_hms(2026, 3, 9, 19, 10, 0).unwrap());
    assert_eq!(s.check_now().await, None, "04:10 local is not the check hour");
    assert!(s.ws("output_to_user/second.pdf").exists());

    s.set_clock(Utc.with_ymd_and_hms(2026, 3, 10, 18, 5, 0).unwrap());
    let report = s.check_now().await.expect("the next local day runs again");
    assert_eq!(report.files_deleted, 1);
    assert!(!s.ws("output_to_user/second.pdf").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_cleanup_deletes_nothing() {
    let mut cfg = config();
    cfg.cleanup.enabled = false;
    let s = setup(cfg, NO_TIMER).await;
    file(&s.ws("output_to_user/2020-01-01/x.pdf"), 40);
    file(&s.ws("telegram_files/old.jpg"), 400);
    assert_eq!(s.check_now().await, None, "at the check hour, disabled: no run");
    s.set_clock(check_time() + chrono::Duration::days(1));
    assert_eq!(s.check_now().await, None);
    assert!(s.ws("output_to_user/2020-01-01/x.pdf").exists());
    assert!(s.ws("telegram_files/old.jpg").exists());
}
