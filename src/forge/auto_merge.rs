//! Auto-merge through GraphQL `enablePullRequestAutoMerge` (REST has no
//! endpoint for it). GraphQL reports failures as HTTP 200 with an `errors`
//! array (`../shared/fixtures/github/graphql-enable-auto-merge.recorded.json`),
//! so success is `data.enablePullRequestAutoMerge` being present, not the
//! status code.

use http::Method;
use serde_json::{Value, json};

use super::{ForgeError, GitHub, PullRequest};

const MUTATION: &str = "mutation EnableAutoMerge($input: EnablePullRequestAutoMergeInput!) { enablePullRequestAutoMerge(input: $input) { pullRequest { number autoMergeRequest { enabledAt mergeMethod } } } }";

/// Why GitHub would not turn auto-merge on, with what fixes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The repository's "Allow auto-merge" setting is off.
    NotAllowed,
    /// No protection rule requires anything before merging, so GitHub
    /// would merge at once (it answers "clean status").
    NoProtection,
    /// The branch moved since revertbot pushed it (`expectedHeadOid`).
    HeadMoved,
    Other,
}

impl Refusal {
    /// Classifies GitHub's message (the texts GitHub answers; the first is
    /// recorded in the fixture above).
    pub fn classify(message: &str) -> Self {
        let m = message.to_ascii_lowercase();
        if m.contains("auto merge is not allowed") || m.contains("auto-merge is not allowed") {
            Refusal::NotAllowed
        } else if m.contains("clean status")
            || m.contains("protected branch rules not configured")
            || m.contains("branch protection")
        {
            Refusal::NoProtection
        } else if m.contains("expected head")
            || m.contains("head sha")
            || m.contains("expectedheadoid")
        {
            Refusal::HeadMoved
        } else {
            Refusal::Other
        }
    }

    pub fn fix(self) -> &'static str {
        match self {
            Refusal::NotAllowed => {
                "turn on \"Allow auto-merge\" in the repository's Settings → General → Pull Requests, or use policy `pr` and merge by hand"
            }
            Refusal::NoProtection => {
                "the base branch has no protection rule or ruleset that requires status checks, so GitHub would merge at once, unchecked: add one, or use policy `pr` and merge by hand"
            }
            Refusal::HeadMoved => {
                "the branch moved since revertbot pushed it; revertbot auto-merges only the commit it built — look at the branch"
            }
            Refusal::Other => "see GitHub's message; merge the pull request by hand meanwhile",
        }
    }
}

impl GitHub {
    /// Turns on auto-merge (merge commit) for `pr`, only while its head is
    /// `expected_head`. Idempotent: asking again while it is on succeeds.
    pub async fn enable_auto_merge(
        &self,
        pr: &PullRequest,
        expected_head: &str,
    ) -> Result<(), ForgeError> {
        let doing = format!("turning on auto-merge for pull request #{}", pr.number);
        let body = json!({
            "query": MUTATION,
            "variables": { "input": {
                "pullRequestId": pr.node_id,
                "mergeMethod": "MERGE",
                "expectedHeadOid": expected_head,
            }},
        });
        let url = self.endpoints.graphql.as_str().to_owned();
        let answer = self
            .with_retries(&doing, || {
                self.call(Method::POST, &url, Some(&body), &doing)
            })
            .await?;
        read_answer(self.endpoints.graphql.as_str(), &doing, pr.number, &answer)
    }
}

fn read_answer(server: &str, doing: &str, number: u64, answer: &Value) -> Result<(), ForgeError> {
    let message = answer["errors"].as_array().and_then(|errors| {
        let texts: Vec<&str> = errors
            .iter()
            .filter_map(|e| e["message"].as_str())
            .collect();
        (!errors.is_empty()).then(|| {
            if texts.is_empty() {
                "an error without a message".to_owned()
            } else {
                texts.join("; ")
            }
        })
    });
    if let Some(message) = message {
        let message = crate::redact::scrub(&message).into_owned();
        let refusal = Refusal::classify(&message);
        return Err(ForgeError::AutoMergeRefused {
            number,
            refusal,
            message,
            fix: refusal.fix(),
        });
    }
    if answer["data"]["enablePullRequestAutoMerge"].is_object() {
        return Ok(());
    }
    Err(ForgeError::Malformed {
        server: server.to_owned(),
        doing: doing.to_owned(),
        message: "no data.enablePullRequestAutoMerge and no errors".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded() -> Vec<Value> {
        let text =
            include_str!("../../tests/fixtures/github/graphql-enable-auto-merge.recorded.json");
        let v: Value = serde_json::from_str(text).unwrap();
        v["interactions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["response"]["body"].clone())
            .collect()
    }

    #[test]
    fn the_recorded_success_and_refusal_are_read() {
        let answers = recorded();
        assert!(read_answer("s", "d", 7, &answers[0]).is_ok());
        let err = read_answer("s", "d", 7, &answers[1]).unwrap_err();
        match &err {
            ForgeError::AutoMergeRefused { refusal, .. } => {
                assert_eq!(*refusal, Refusal::NotAllowed)
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("Allow auto-merge"), "{err}");
    }

    #[test]
    fn refusals_are_told_apart() {
        assert_eq!(
            Refusal::classify("Pull request Pull request is in clean status"),
            Refusal::NoProtection
        );
        assert_eq!(
            Refusal::classify("Protected branch rules not configured for this branch"),
            Refusal::NoProtection
        );
        assert_eq!(
            Refusal::classify("Expected head oid does not match"),
            Refusal::HeadMoved
        );
        assert_eq!(Refusal::classify("Something else"), Refusal::Other);
        assert!(
            read_answer(
                "s",
                "d",
                1,
                &json!({"data": {"enablePullRequestAutoMerge": null}})
            )
            .is_err()
        );
    }
}
