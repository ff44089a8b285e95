//! Property tests of the parsers that read what users and clients send: manifests (YAML and JSON, at
//! any depth and size the budget allows) never panic, never recurse away, and are either loaded or
//! refused with a message. The emulator's `$filter` parser has its own (`emulator/odata.rs`).

use proptest::prelude::*;

fn load(text: &str) -> Result<(), String> {
    entente::manifest::load_str(&[("fuzz.yaml", text)]).map(|_| ()).map_err(|e| format!("{e:?}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Arbitrary text: loaded or refused, never a panic.
    #[test]
    fn arbitrary_text_never_panics(text in ".{0,400}") {
        let _ = load(&text);
    }

    /// Text made of YAML's own punctuation and entente's keys, the shape a mangled manifest has.
    #[test]
    fn mangled_manifests_are_refused_with_a_message(
        text in r#"(apiVersion: entente.dev/v1alpha1\n|kind: (Tenant|GuestInvitation|AccessPackage)\n|metadata:|spec:|  |- |\{|\}|\[|\]|: |'|"|&a |\*a|---\n|\n|[a-z]{1,6}|[0-9]{1,3}){0,80}"#
    ) {
        if let Err(e) = load(&text) {
            prop_assert!(!e.is_empty());
        }
    }

    /// Nesting far past any real manifest, in flow and block style: refused by the parser's limits.
    #[test]
    fn deep_nesting_is_refused_not_overflowed(depth in 200usize..20_000, flow in any::<bool>()) {
        let text = if flow {
            format!("spec: {}{}\n", "[".repeat(depth), "]".repeat(depth))
        } else {
            (0..depth.min(2_000)).map(|i| format!("{}- \n", "  ".repeat(i))).collect()
        };
        let _ = load(&text);
    }
}

#[test]
fn an_alias_bomb_is_refused_by_the_node_budget() {
    let mut text = String::from("a: &a [x]\n");
    for i in 1..30 {
        let prev = if i == 1 { "a".to_string() } else { format!("b{}", i - 1) };
        text.push_str(&format!("b{i}: &b{i} [{}]\n", vec![format!("*{prev}"); 10].join(",")));
    }
    let e = load(&text).unwrap_err();
    assert!(e.contains("budget"), "{e}");
}
