//! Stamps the commit the binary is built from into `entente --version` (`ENTENTE_COMMIT`): the short hash,
//! or `unknown commit` outside a git checkout. (No `-dirty` mark: it would only be as fresh as the last
//! rebuild this script triggers, so it could lie.)

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok().filter(|o| o.status.success())?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let commit = match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(hash) => format!("commit {hash}"),
        None => "unknown commit".to_string(),
    };
    println!("cargo:rustc-env=ENTENTE_COMMIT={commit}");
    // Rerun when HEAD moves (a commit, a checkout), not on every edit.
    println!("cargo:rerun-if-changed=.git/HEAD");
    if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"]) {
        println!("cargo:rerun-if-changed=.git/{head}");
    }
}
