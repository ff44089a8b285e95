//! The CRDs committed under `crds/` are exactly what the code generates (`entente crds`).

#[test]
fn committed_crds_match_the_code() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/crds.yaml")).expect("crds/crds.yaml exists");
    let generated = entente::api::crds_yaml();
    assert!(
        committed == generated,
        "crds/crds.yaml is out of date: run `cargo run -- crds > crds/crds.yaml` and commit the result"
    );
}

#[test]
fn every_kind_has_status_printer_columns_and_the_category() {
    for crd in entente::api::crds() {
        let v = &crd.spec.versions[0];
        assert!(
            v.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some(),
            "{} has a status subresource",
            crd.spec.names.kind
        );
        assert!(
            v.additional_printer_columns.as_ref().is_some_and(|c| c.iter().any(|c| c.name == "Ready")),
            "{}",
            crd.spec.names.kind
        );
        assert_eq!(crd.spec.names.categories.as_deref(), Some(&["entente".to_string()][..]));
        assert_eq!(crd.spec.scope, "Namespaced");
    }
}
