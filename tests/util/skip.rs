//! The fast loop's escape hatch: `SSELAB_TEST_SKIP=chromium,firefox,webkit,redis` (any of them,
//! comma-separated) skips the tests that need that browser or a real `redis-server`. A skipped
//! test says so on stderr, past the test harness's capture, and returns: never a silent skip.
//! `scripts/test.sh` refuses to run with it set, so CI always runs everything.

use std::io::Write as _;

/// The environment variable, and the words it may hold.
pub const VAR: &str = "SSELAB_TEST_SKIP";
const WORDS: [&str; 4] = ["chromium", "firefox", "webkit", "redis"];

/// Whether `SSELAB_TEST_SKIP` names `what` (one of [`WORDS`]); when it does, the running
/// test (its thread's name) is reported skipped. A word it does not know fails the test,
/// naming the word.
pub fn skipped(what: &str) -> bool {
    let Some(value) = std::env::var_os(VAR) else {
        return false;
    };
    let value = value.to_string_lossy();
    if !names(&value, what) {
        return false;
    }
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    // Straight to the process's stderr: `eprintln!` in a test that passes is captured.
    let _ = writeln!(std::io::stderr(), "skipped: {VAR}={value} ({test})");
    true
}

/// Whether the comma-separated `value` names `what`; panics on a word not in [`WORDS`].
fn names(value: &str, what: &str) -> bool {
    assert!(WORDS.contains(&what), "{what} is not one of {WORDS:?}");
    let mut found = false;
    for word in value.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        assert!(
            WORDS.contains(&word),
            "{VAR}: unknown word `{word}` (it takes {}, comma-separated)",
            WORDS.join(", ")
        );
        found |= word == what;
    }
    found
}

#[test]
fn skip_words_are_read_and_an_unknown_one_is_an_error() {
    assert!(names("chromium", "chromium"));
    assert!(names(" firefox , redis,", "redis"));
    assert!(!names("firefox,redis", "chromium"));
    assert!(!names("", "chromium"));
    let unknown = std::panic::catch_unwind(|| names("chromium,chrome", "chromium"));
    let message = *unknown
        .expect_err("an unknown word is an error")
        .downcast::<String>()
        .expect("a message");
    assert!(message.contains("`chrome`"), "{message}");
}
