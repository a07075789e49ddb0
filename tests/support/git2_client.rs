//! git2 (libgit2) client helpers that authenticate like revertbot does:
//! Basic auth with username `x-access-token` and the token as password,
//! through a credentials callback capped to a few attempts (libgit2 calls it
//! again after every 401).

use std::cell::Cell;
use std::path::Path;
use std::rc::Rc;

use git2::{Cred, CredentialType, FetchOptions, PushOptions, RemoteCallbacks, Repository};

use super::githost::USERNAME;

/// libgit2 asks again after each rejected attempt; give up after this many.
pub const MAX_CREDENTIAL_ATTEMPTS: usize = 3;

/// Callbacks whose credentials callback answers `x-access-token:<password>`
/// at most [`MAX_CREDENTIAL_ATTEMPTS`] times, counting calls in `attempts`.
pub fn callbacks(password: &str, attempts: Rc<Cell<usize>>) -> RemoteCallbacks<'static> {
    let password = password.to_owned();
    let mut callbacks = RemoteCallbacks::new();
    callbacks.credentials(move |_url, _username, allowed| {
        attempts.set(attempts.get() + 1);
        if attempts.get() > MAX_CREDENTIAL_ATTEMPTS {
            return Err(git2::Error::from_str(&format!(
                "credentials rejected {MAX_CREDENTIAL_ATTEMPTS} times; giving up"
            )));
        }
        if !allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
            return Err(git2::Error::from_str(&format!(
                "server wants {allowed:?}, only user/password is supported"
            )));
        }
        Cred::userpass_plaintext(USERNAME, &password)
    });
    callbacks
}

/// Fetch options with [`callbacks`] and an optional depth.
pub fn fetch_options(password: &str, depth: Option<i32>) -> FetchOptions<'static> {
    let mut options = FetchOptions::new();
    options.remote_callbacks(callbacks(password, Rc::default()));
    if let Some(depth) = depth {
        options.depth(depth);
    }
    options
}

/// Clones `url` into `dir` with git2.
pub fn clone(url: &str, password: &str, dir: &Path) -> Result<Repository, git2::Error> {
    git2::build::RepoBuilder::new()
        .fetch_options(fetch_options(password, None))
        .clone(url, dir)
}

/// Fetches `refspecs` from `url` into `repo` (anonymous remote).
pub fn fetch(
    repo: &Repository,
    url: &str,
    refspecs: &[&str],
    password: &str,
    depth: Option<i32>,
) -> Result<(), git2::Error> {
    let mut remote = repo.remote_anonymous(url)?;
    remote.fetch(refspecs, Some(&mut fetch_options(password, depth)), None)
}

/// Per-ref result of a push: `(refname, None)` if the server accepted it,
/// `(refname, Some(reason))` if it refused it.
pub type PushStatus = Vec<(String, Option<String>)>;

/// Pushes `refspecs` from `repo` to `url`. `Err` only for transport-level
/// failures; refusals by the server (hooks, non-fast-forward) come back in
/// the status list, which is what `push_update_reference` exists for.
pub fn push(
    repo: &Repository,
    url: &str,
    refspecs: &[&str],
    password: &str,
) -> Result<PushStatus, git2::Error> {
    let statuses = Rc::new(std::cell::RefCell::new(Vec::new()));
    let mut callbacks = callbacks(password, Rc::default());
    let sink = Rc::clone(&statuses);
    callbacks.push_update_reference(move |refname, status| {
        sink.borrow_mut()
            .push((refname.to_owned(), status.map(str::to_owned)));
        Ok(())
    });
    let mut options = PushOptions::new();
    options.remote_callbacks(callbacks);
    repo.remote_anonymous(url)?
        .push(refspecs, Some(&mut options))?;
    Ok(statuses.take())
}
