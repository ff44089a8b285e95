//! `entente rules [RULE]`: the rules R1–R18 that refusals and explanations name, from docs/rules.md (built
//! into the binary, so the explanation is at hand wherever entente runs).

use std::io::Write;

const RULES: &str = include_str!("../../docs/rules.md");

/// Each rule's section: (`R5`, heading, text up to the next rule).
fn sections() -> Vec<(&'static str, &'static str, &'static str)> {
    let mut out = Vec::new();
    let mut rest = RULES;
    while let Some(start) = rest.find("\n## R") {
        let section = &rest[start + 4..];
        let end = section.find("\n<a id=").or_else(|| section.find("\n## ")).unwrap_or(section.len());
        let (body, heading_end) = (&section[..end], section.find('\n').unwrap_or(end));
        let heading = &section[..heading_end];
        let id = heading.split(':').next().unwrap_or(heading);
        out.push((id, heading, body));
        rest = &section[end..];
    }
    out
}

/// Prints one rule (`R5`, `r5` or `5`), or the list of rules with their headings.
pub fn run(rule: Option<&str>, out: &mut dyn Write) -> anyhow::Result<bool> {
    let sections = sections();
    let Some(rule) = rule else {
        for (_, heading, _) in &sections {
            writeln!(out, "{heading}")?;
        }
        writeln!(out, "\n`entente rules R5` prints one rule; docs/rules.md has them all.")?;
        return Ok(true);
    };
    let wanted = rule.trim().trim_start_matches(['R', 'r']);
    match sections.iter().find(|(id, _, _)| id.trim_start_matches('R') == wanted) {
        Some((_, _, body)) => {
            writeln!(out, "{}", body.trim_end())?;
            Ok(true)
        }
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_a_section() {
        let ids: Vec<&str> = sections().iter().map(|(id, _, _)| *id).collect();
        let expected: Vec<String> = (1..=18).map(|n| format!("R{n}")).collect();
        assert_eq!(ids, expected);
        let mut out = Vec::new();
        assert!(run(Some("r5"), &mut out).unwrap());
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("R5: Invitation domain list") && !text.contains("## R6"), "{text}");
    }
}
