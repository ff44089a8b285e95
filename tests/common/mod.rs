//! Helpers shared by the CLI tests: a scratch workspace with its own directory file.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;

pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("temp dir") }
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    pub fn db(&self) -> PathBuf {
        self.path("directory.db")
    }
    /// `entente ARGS --directory <scratch db>` run in the scratch dir; returns (exit code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        self.run_with_stdin(args, "")
    }
    /// `run`, with `stdin` on standard input.
    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> (i32, String, String) {
        self.run_with(args, stdin, &[])
    }
    /// `run`, with `stdin` on standard input and `envs` set.
    pub fn run_with(&self, args: &[&str], stdin: &str, envs: &[(&str, &str)]) -> (i32, String, String) {
        let out = Command::cargo_bin("entente")
            .expect("binary")
            .current_dir(self.dir.path())
            .env("ENTENTE_DIRECTORY", self.db())
            .envs(envs.iter().copied())
            .args(args)
            .write_stdin(stdin)
            .output()
            .expect("runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, text).unwrap();
        p
    }
    /// Takes the documents naming any of `names` (`metadata.name`) out of the multi-document file `file`.
    pub fn drop_documents(&self, file: &Path, names: &[&str]) {
        let text = std::fs::read_to_string(file).unwrap();
        let kept: Vec<&str> =
            text.split("\n---\n").filter(|d| !names.iter().any(|n| d.contains(&format!("name: {n}")))).collect();
        std::fs::write(file, kept.join("\n---\n")).unwrap();
    }
    /// A copy of `examples/` in the scratch dir, to edit.
    pub fn copy_examples(&self) -> PathBuf {
        let dst = self.path("examples");
        std::fs::create_dir_all(&dst).unwrap();
        for e in std::fs::read_dir(examples()).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
        dst
    }
}

pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}
