//! Self-tests for the test support code: the smart-HTTP host is real
//! (git CLI and libgit2 both talk to it), strict (Basic auth on every
//! request) and its fault injection does what tests rely on.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::cell::Cell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

use git2::Repository;
use support::git2_client::{self, MAX_CREDENTIAL_ATTEMPTS};
use support::http::{base64_encode, basic_auth_header, basic_credentials, read_request};
use support::{GitHost, WorkRepo};

const REPO: &str = "infra.git";

/// A host with `infra.git` holding one commit on `main`; returns its SHA.
fn host_with_seed() -> (GitHost, String) {
    let host = GitHost::start();
    host.create_bare(REPO);
    let seed = WorkRepo::init();
    seed.write("apps/web/values.yaml", "image: web:1.0.0\n");
    let sha = seed.commit("Deploy web 1.0.0");
    seed.push_to(&host, REPO);
    (host, sha)
}

/// Sends raw bytes to the host and returns the whole response as text.
fn raw_exchange(host: &GitHost, request: &str) -> String {
    let addr = host.base_url().trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(addr).expect("connect to GitHost");
    stream.write_all(request.as_bytes()).expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    response
}

fn statuses(host: &GitHost) -> Vec<u16> {
    host.requests().into_iter().map(|(_, _, s)| s).collect()
}

#[test]
fn cli_clone_fetch_and_push_over_http() {
    let (host, first) = host_with_seed();
    let alice = WorkRepo::clone_from(&host, REPO);
    let bob = WorkRepo::clone_from(&host, REPO);
    assert_eq!(alice.rev_parse("HEAD"), first);

    alice.write("apps/web/values.yaml", "image: web:1.1.0\n");
    let second = alice.commit("Deploy web 1.1.0");
    alice.push(&["HEAD:main"]);
    assert_eq!(host.rev_parse(REPO, "main"), Some(second.clone()));

    bob.fetch();
    assert_eq!(bob.rev_parse("origin/main"), second);
    assert_eq!(
        bob.log_subjects("origin/main"),
        ["Deploy web 1.1.0", "Deploy web 1.0.0"]
    );

    // Every request went over HTTP: no anonymous request was ever served.
    let log = host.requests();
    assert!(
        log.iter()
            .any(|(m, p, s)| m == "POST" && p.ends_with("/git-receive-pack") && *s == 200)
    );
    assert!(
        log.iter()
            .any(|(m, p, s)| m == "POST" && p.ends_with("/git-upload-pack") && *s == 200)
    );
    assert!(
        host.unauthorized_count() > 0,
        "git CLI should be challenged first: {log:?}"
    );
    // The CLI speaks protocol v2, passed to http-backend as GIT_PROTOCOL.
    let details = host.request_details();
    assert!(
        details
            .iter()
            .any(|r| r.git_protocol.as_deref() == Some("version=2") && r.status == 200)
    );
}

#[test]
fn git2_clone_fetch_and_push_with_token() {
    let (host, first) = host_with_seed();
    let dir = tempfile::tempdir().unwrap();
    let repo = git2_client::clone(&host.url(REPO), host.token(), dir.path())
        .expect("git2 clone over HTTP");
    assert_eq!(repo.head().unwrap().target().unwrap().to_string(), first);

    // Someone else pushes; git2 fetches it.
    let other = WorkRepo::clone_from(&host, REPO);
    other.write("apps/api/values.yaml", "image: api:2.0.0\n");
    let second = other.commit("Deploy api 2.0.0");
    other.push(&["HEAD:main"]);
    git2_client::fetch(
        &repo,
        &host.url(REPO),
        &["+refs/heads/main:refs/remotes/origin/main"],
        host.token(),
        None,
    )
    .expect("git2 fetch over HTTP");
    let fetched = repo.refname_to_id("refs/remotes/origin/main").unwrap();
    assert_eq!(fetched.to_string(), second);

    // git2 commits on top and pushes.
    let parent = repo.find_commit(fetched).unwrap();
    let blob = repo.blob(b"image: web:1.0.1\n").unwrap();
    let mut tree = repo.treebuilder(Some(&parent.tree().unwrap())).unwrap();
    tree.insert("NOTES.txt", blob, 0o100644).unwrap();
    let tree = repo.find_tree(tree.write().unwrap()).unwrap();
    let sig = git2::Signature::now("revertbot", "bot@example.invalid").unwrap();
    let third = repo
        .commit(
            Some("refs/heads/revert"),
            &sig,
            &sig,
            "Revert",
            &tree,
            &[&parent],
        )
        .unwrap();
    let status = git2_client::push(
        &repo,
        &host.url(REPO),
        &["refs/heads/revert:refs/heads/main"],
        host.token(),
    )
    .expect("git2 push over HTTP");
    assert_eq!(status, [("refs/heads/main".to_owned(), None)]);
    assert_eq!(host.rev_parse(REPO, "main"), Some(third.to_string()));
}

#[test]
fn large_pushes_use_chunked_bodies_and_work_for_cli_and_git2() {
    let (host, _) = host_with_seed();
    // ~3 MiB of incompressible bytes: above git's 1 MiB http.postBuffer, so
    // the CLI probes and then streams chunked; libgit2 always chunks pushes.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let noise: Vec<u8> = (0..3 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let cli = WorkRepo::clone_from(&host, REPO);
    cli.write("blobs/cli.bin", &noise);
    let cli_sha = cli.commit("Big blob from the CLI");
    cli.push(&["HEAD:main"]);
    assert_eq!(host.rev_parse(REPO, "main"), Some(cli_sha.clone()));

    let g = WorkRepo::clone_from(&host, REPO);
    g.write("blobs/git2.bin", &noise[..noise.len() - 1]);
    let git2_sha = g.commit("Big blob from git2");
    let repo = Repository::open(g.path()).unwrap();
    let status = git2_client::push(
        &repo,
        &host.url(REPO),
        &["HEAD:refs/heads/main"],
        host.token(),
    )
    .expect("git2 push of a large pack");
    assert_eq!(status, [("refs/heads/main".to_owned(), None)]);
    assert_eq!(host.rev_parse(REPO, "main"), Some(git2_sha));
    let fresh = WorkRepo::clone_from(&host, REPO);
    assert_eq!(fresh.show_file("HEAD", "blobs/cli.bin"), Some(noise));

    let pushes: Vec<_> = host
        .request_details()
        .into_iter()
        .filter(|r| r.method == "POST" && r.target.ends_with("/git-receive-pack"))
        .collect();
    let big_chunked = |agent: &str| {
        pushes.iter().any(|r| {
            r.chunked && r.body_len > 1 << 20 && r.status == 200 && r.user.as_deref() == Some(agent)
        })
    };
    assert!(
        big_chunked("x-access-token"),
        "no large chunked push: {pushes:#?}"
    );
    assert_eq!(
        pushes
            .iter()
            .filter(|r| r.chunked && r.body_len > 1 << 20)
            .count(),
        2,
        "{pushes:#?}"
    );
}

#[test]
fn every_request_needs_basic_auth_with_the_token() {
    let (host, _) = host_with_seed();
    let anonymous = raw_exchange(
        &host,
        "GET /infra.git/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(anonymous.starts_with("HTTP/1.1 401 "), "{anonymous}");
    assert!(
        anonymous.contains("WWW-Authenticate: Basic realm=\"git\""),
        "{anonymous}"
    );

    // Empty username with the right token is refused too (base64 of ":<token>").
    let empty_user = raw_exchange(
        &host,
        &format!(
            "GET /infra.git/info/refs?service=git-upload-pack HTTP/1.1\r\nAuthorization: Basic {}\r\nConnection: close\r\n\r\n",
            base64_encode(format!(":{}", host.token()).as_bytes())
        ),
    );
    assert!(empty_user.starts_with("HTTP/1.1 401 "), "{empty_user}");

    let any_user = raw_exchange(
        &host,
        &format!(
            "GET /infra.git/info/refs?service=git-upload-pack HTTP/1.1\r\nAuthorization: Basic {}\r\nConnection: close\r\n\r\n",
            base64_encode(format!("someone:{}", host.token()).as_bytes())
        ),
    );
    assert!(any_user.starts_with("HTTP/1.1 200 "), "{any_user}");
    assert!(
        any_user.contains("application/x-git-upload-pack-advertisement"),
        "{any_user}"
    );
}

#[test]
fn wrong_password_fails_for_cli_and_git2_without_looping() {
    let (host, _) = host_with_seed();
    let served_before = host.requests().len();

    // git CLI with a wrong password: fails, never prompts.
    let dir = tempfile::tempdir().unwrap();
    let out = support::repo::git_command(dir.path(), 0)
        .args([
            "-c",
            "credential.helper=!f() { echo username=x-access-token; echo password=wrong; }; f",
        ])
        .args(["clone", "-q", &host.url(REPO)])
        .arg(dir.path().join("clone"))
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "clone with a wrong password must fail"
    );

    // git2 with a wrong password and the capped callback.
    let attempts = Rc::new(Cell::new(0));
    let mut options = git2::FetchOptions::new();
    options.remote_callbacks(git2_client::callbacks("wrong", Rc::clone(&attempts)));
    let err = git2::build::RepoBuilder::new()
        .fetch_options(options)
        .clone(&host.url(REPO), &dir.path().join("git2"))
        .err()
        .expect("git2 clone with a wrong password must fail");
    assert_eq!(attempts.get(), MAX_CREDENTIAL_ATTEMPTS + 1, "{err}");

    // Nothing but 401s were served to either client.
    let after: Vec<_> = host.requests().split_off(served_before);
    assert!(!after.is_empty());
    assert!(after.iter().all(|(_, _, s)| *s == 401), "{after:?}");
    assert!(host.unauthorized_count() >= after.len());
}

#[test]
fn libgit2_alone_gives_up_on_an_uncapped_callback() {
    let (host, _) = host_with_seed();
    let dir = tempfile::tempdir().unwrap();
    let calls = Rc::new(Cell::new(0usize));
    let counter = Rc::clone(&calls);
    let mut callbacks = git2::RemoteCallbacks::new();
    callbacks.credentials(move |_, _, _| {
        counter.set(counter.get() + 1);
        assert!(counter.get() < 1000, "libgit2 keeps asking for credentials");
        git2::Cred::userpass_plaintext("x-access-token", "wrong")
    });
    let mut options = git2::FetchOptions::new();
    options.remote_callbacks(callbacks);
    let err = git2::build::RepoBuilder::new()
        .fetch_options(options)
        .clone(&host.url(REPO), dir.path())
        .err()
        .expect("clone with a wrong password must fail");
    eprintln!("libgit2 asked {} times, then: {err}", calls.get());
    assert!(calls.get() > MAX_CREDENTIAL_ATTEMPTS, "{err}");
}

#[test]
fn http_parsing_handles_chunks_trailers_and_basic_auth() {
    let raw = b"POST /r.git/git-receive-pack HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n\
                4\r\nabcd\r\n3;ext=1\r\nefg\r\n0\r\nX-Trailer: 1\r\n\r\n";
    let mut interim = Vec::new();
    let request = read_request(&mut &raw[..], &mut interim).unwrap().unwrap();
    assert_eq!(request.body, b"abcdefg");
    assert!(request.keep_alive);
    assert_eq!(interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    let header = basic_auth_header("x-access-token", "s3cret");
    assert_eq!(header, "Basic eC1hY2Nlc3MtdG9rZW46czNjcmV0");
    assert_eq!(
        basic_credentials(&header),
        Some(("x-access-token".into(), "s3cret".into()))
    );
    assert_eq!(basic_credentials("Bearer abc"), None);
}

#[test]
fn support_types_can_be_shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<GitHost>();
    send_sync::<WorkRepo>();
}

#[test]
fn drop_does_not_hang_on_idle_keep_alive_connections() {
    let host = GitHost::start();
    let idle = TcpStream::connect(host.base_url().trim_start_matches("http://")).unwrap();
    // A hang guard, not a timing claim: dropping must finish at all.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(host);
        let _ = done.send(());
    });
    assert!(
        finished.recv_timeout(Duration::from_secs(60)).is_ok(),
        "dropping the host hung on an idle keep-alive connection"
    );
    drop(idle);
}

#[test]
fn protected_branch_rejection_is_visible_through_push_update_reference() {
    let (host, first) = host_with_seed();
    host.reject_pushes(
        REPO,
        "GH006: Protected branch update failed for refs/heads/main.",
    );
    let work = WorkRepo::clone_from(&host, REPO);
    work.write("apps/web/values.yaml", "image: web:0.9.0\n");
    work.commit("Revert web to 0.9.0");

    let repo = Repository::open(work.path()).unwrap();
    let status = git2_client::push(
        &repo,
        &host.url(REPO),
        &["HEAD:refs/heads/main"],
        host.token(),
    )
    .expect("a refused push is still Ok at the transport level");
    assert_eq!(status.len(), 1, "{status:?}");
    assert_eq!(status[0].0, "refs/heads/main", "{status:?}");
    eprintln!("hook-refused push status: {status:?}");
    assert!(
        status[0].1.is_some(),
        "the refusal must be reported: {status:?}"
    );
    assert_eq!(host.rev_parse(REPO, "main"), Some(first.clone()));

    // The CLI sees the hook's message (our own text, relayed as "remote: ...").
    let stderr = work
        .try_push(&["HEAD:main"])
        .expect_err("CLI push must be refused");
    assert!(
        stderr.contains("GH006: Protected branch update failed"),
        "{stderr}"
    );

    host.allow_pushes(REPO);
    work.push(&["HEAD:main"]);
    assert_ne!(host.rev_parse(REPO, "main"), Some(first));
}

#[test]
fn competing_push_before_receive_pack_makes_ours_non_fast_forward() {
    let (host, _) = host_with_seed();
    let rival = WorkRepo::clone_from(&host, REPO);
    rival.write("apps/api/values.yaml", "image: api:3.0.0\n");
    let rival_sha = rival.commit("Deploy api 3.0.0");
    let (ran_tx, ran_rx) = std::sync::mpsc::channel();
    host.before_next_receive_pack(
        REPO,
        Box::new(move || {
            rival.push(&["HEAD:main"]);
            ran_tx.send(()).unwrap();
        }),
    );

    let ours = WorkRepo::clone_from(&host, REPO);
    ours.write("apps/web/values.yaml", "image: web:0.9.0\n");
    ours.commit("Revert web to 0.9.0");
    let repo = Repository::open(ours.path()).unwrap();
    let status = git2_client::push(
        &repo,
        &host.url(REPO),
        &["HEAD:refs/heads/main"],
        host.token(),
    )
    .expect("a raced push is still Ok at the transport level");
    ran_rx.try_recv().expect("the hook ran during our push");
    assert_eq!(status.len(), 1, "{status:?}");
    assert!(
        status[0].1.is_some(),
        "the lost race must be reported: {status:?}"
    );
    eprintln!("raced push status: {status:?}");
    assert_eq!(host.rev_parse(REPO, "main"), Some(rival_sha));
}

#[test]
fn shallow_git2_fetch_downloads_far_less_than_a_full_clone() {
    let host = GitHost::start();
    host.create_bare(REPO);
    let seed = WorkRepo::init();
    for i in 0..200 {
        // Different, poorly compressible content in every commit.
        let body: String = (0..64)
            .map(|j| format!("{:08x}\n", (i * 7919 + j) * 2_654_435_761_u64))
            .collect();
        seed.write("history.txt", format!("commit {i}\n{body}"));
        seed.commit(&format!("Change {i}"));
    }
    seed.push_to(&host, REPO);
    let tip = seed.rev_parse("HEAD");

    let full_dir = tempfile::tempdir().unwrap();
    let before = host.upload_pack_bytes(REPO);
    let full = git2_client::clone(&host.url(REPO), host.token(), full_dir.path()).unwrap();
    let full_bytes = host.upload_pack_bytes(REPO) - before;
    assert!(!full.is_shallow());

    let shallow_dir = tempfile::tempdir().unwrap();
    let shallow = Repository::init(shallow_dir.path()).unwrap();
    let before = host.upload_pack_bytes(REPO);
    git2_client::fetch(
        &shallow,
        &host.url(REPO),
        &["+refs/heads/main:refs/remotes/origin/main"],
        host.token(),
        Some(1),
    )
    .expect("shallow fetch over smart HTTP");
    let shallow_bytes = host.upload_pack_bytes(REPO) - before;
    assert!(shallow.is_shallow());
    let fetched = shallow.refname_to_id("refs/remotes/origin/main").unwrap();
    assert_eq!(fetched.to_string(), tip);
    eprintln!("full clone: {full_bytes} bytes, depth 1: {shallow_bytes} bytes");
    assert!(shallow_bytes > 0);
    assert!(
        shallow_bytes * 10 < full_bytes,
        "depth 1 {shallow_bytes} vs full {full_bytes}"
    );

    // The CLI helper does shallow clones too.
    let cli_dir = tempfile::tempdir().unwrap();
    host.clone_into(REPO, &cli_dir.path().join("c"), Some(1));
    let count = support::repo::git_command(cli_dir.path(), 0)
        .current_dir(cli_dir.path().join("c"))
        .args(["rev-list", "--count", "HEAD"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&count.stdout).trim(), "1");
}

#[test]
fn unicode_space_and_binary_paths_round_trip() {
    let host = GitHost::start();
    host.create_bare(REPO);
    let seed = WorkRepo::init();
    let odd = "envs/prod eu/ünïcødé 文件.yaml";
    let binary: Vec<u8> = (0..=255u8).chain([0, 0, 255]).collect();
    seed.write(odd, "image: web@sha256:abc\n");
    seed.write("bin/blob.dat", &binary);
    seed.write("old name.txt", "moved\n");
    seed.write("gone.txt", "bye\n");
    seed.commit("Add odd paths");
    seed.rename("old name.txt", "new dir/new näme.txt");
    seed.remove("gone.txt");
    let tip = seed.commit("Rename and remove");
    seed.push_to(&host, REPO);

    let cli = WorkRepo::clone_from(&host, REPO);
    assert_eq!(
        cli.show_file("HEAD", odd).as_deref(),
        Some(&b"image: web@sha256:abc\n"[..])
    );
    assert_eq!(cli.show_file("HEAD", "bin/blob.dat"), Some(binary.clone()));
    assert_eq!(
        cli.show_file("HEAD", "new dir/new näme.txt").as_deref(),
        Some(&b"moved\n"[..])
    );
    assert_eq!(cli.show_file("HEAD", "gone.txt"), None);
    assert_eq!(
        cli.show_file("HEAD~1", "gone.txt").as_deref(),
        Some(&b"bye\n"[..])
    );

    let dir = tempfile::tempdir().unwrap();
    let repo = git2_client::clone(&host.url(REPO), host.token(), dir.path()).unwrap();
    let tree = repo.revparse_single(&tip).unwrap().peel_to_tree().unwrap();
    let entry = tree.get_path(std::path::Path::new(odd)).unwrap();
    let blob = repo.find_blob(entry.id()).unwrap();
    assert_eq!(blob.content(), b"image: web@sha256:abc\n");
    assert_eq!(
        std::fs::read(dir.path().join("bin/blob.dat")).unwrap(),
        binary
    );
}

#[test]
fn fail_next_answers_502_then_recovers() {
    let (host, first) = host_with_seed();
    let work = WorkRepo::clone_from(&host, REPO);
    let served_before = host.requests().len();
    host.fail_next(2, 502);

    assert!(work.try_git(&["ls-remote", "origin", "main"]).is_err());
    let dir = tempfile::tempdir().unwrap();
    let err = git2_client::clone(&host.url(REPO), host.token(), dir.path())
        .err()
        .expect("second request fails too");
    assert_eq!(err.class(), git2::ErrorClass::Http, "{err}");
    let listed = work.git(&["ls-remote", "origin", "main"]);
    assert!(listed.starts_with(&first), "{listed}");

    let after: Vec<u16> = statuses(&host).split_off(served_before);
    assert_eq!(after[..2], [502, 502], "{after:?}");
    assert!(after[2..].iter().all(|s| *s != 502), "{after:?}");
}

#[test]
fn delay_next_delays_one_request() {
    let (host, _) = host_with_seed();
    let work = WorkRepo::clone_from(&host, REPO);
    host.delay_next(Duration::from_millis(300));
    let started = Instant::now();
    work.git(&["ls-remote", "origin"]);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[test]
fn commits_are_deterministic_across_repos_and_runs() {
    let make = || {
        let repo = WorkRepo::init();
        repo.write("a.yaml", "a: 1\n");
        let first = repo.commit("First");
        repo.checkout_new("feature");
        repo.write("b.yaml", "b: 2\n");
        repo.commit("Feature");
        repo.checkout("main");
        repo.commit_allow_empty("Empty");
        let merge = repo.merge_no_ff("feature", "Merge feature");
        assert_eq!(
            repo.log_subjects("main~1..main"),
            ["Merge feature", "Feature"]
        );
        assert_eq!(repo.rev_parse("HEAD^1^"), first);
        (first, merge)
    };
    let (first, merge) = make();
    assert_eq!(make(), (first.clone(), merge));
    // Fixed identity and clock, so this never changes.
    assert_eq!(first, "84587da9f7dda36f3758f945a475a6324afbcbb8");
}

#[test]
#[should_panic(expected = "hook never ran")]
fn unused_receive_pack_hook_fails_the_test() {
    let host = GitHost::start();
    host.before_next_receive_pack(REPO, Box::new(|| {}));
}

#[test]
#[should_panic(expected = "hook for infra.git panicked")]
fn panicking_receive_pack_hook_fails_the_test() {
    let (host, _) = host_with_seed();
    host.before_next_receive_pack(REPO, Box::new(|| panic!("competing push failed")));
    let work = WorkRepo::clone_from(&host, REPO);
    work.commit_allow_empty("Anything");
    assert!(work.try_push(&["HEAD:main"]).is_err(), "push gets a 500");
}

#[test]
fn gzip_negotiation_bodies_pass_through_to_http_backend() {
    let (host, first) = host_with_seed();
    // Many local commits the server does not have: the CLI's "have" lines
    // exceed 1 KiB and it gzips the upload-pack request body.
    let local = WorkRepo::init();
    for i in 0..80 {
        local.commit_allow_empty(&format!("Local {i}"));
    }
    local.set_origin(&host, REPO);
    local.fetch();
    assert_eq!(local.rev_parse("origin/main"), first);
    let gzipped: Vec<_> = host
        .request_details()
        .into_iter()
        .filter(|r| r.content_encoding.as_deref() == Some("gzip"))
        .collect();
    assert!(!gzipped.is_empty(), "{:#?}", host.request_details());
    assert!(gzipped.iter().all(|r| r.status == 200), "{gzipped:#?}");
}
