mod support;

use support::{GitHost, WorkRepo};

#[test]
fn smoke_clone_over_http() {
    let host = GitHost::start();
    host.create_bare("infra.git");
    let repo = WorkRepo::init();
    repo.write("a.txt", "hello\n");
    let sha = repo.commit("first");
    repo.push_to(&host, "infra.git");
    assert_eq!(
        host.rev_parse("infra.git", "main").as_deref(),
        Some(sha.as_str())
    );
    let clone = WorkRepo::clone_from(&host, "infra.git");
    assert_eq!(clone.rev_parse("HEAD"), sha);
    eprintln!("{:#?}", host.requests());
}
