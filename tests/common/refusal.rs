//! How the command line refuses: exit status 2 and one line on stderr.

use std::process::Output;

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit status 2 and one line on stderr that contains every `mention`.
pub fn assert_refused(out: &Output, mentions: &[&str], what: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{what}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{what}: one line: {err}");
    for m in mentions {
        assert!(err.contains(m), "{what}: `{m}` not in: {err}");
    }
}
