//! Human-readable plan and apply output (`flux diff` style: one `Kind/namespace/name action` line per
//! object, the field diff under it) and the JSON form for machines.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

use serde_json::{Value, json};

use crate::core::diff::FieldChange;
use crate::core::impact::{Effect, ImpactLine};
use crate::core::model::{Kind, ObjectRef};
use crate::core::operation::Outcome;
use crate::core::plan::{Action, Change, Plan, Summary};
use crate::engine::{ApplyReport, ChangeResult};

fn value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn write_diff(out: &mut dyn Write, diff: &[FieldChange]) -> io::Result<()> {
    for d in diff {
        match (&d.from, &d.to) {
            (None, Some(to)) => writeln!(out, "    + {}: {}", d.path, value(to))?,
            (Some(from), None) => writeln!(out, "    - {}: {}", d.path, value(from))?,
            (Some(from), Some(to)) => writeln!(out, "    ~ {}: {} → {}", d.path, value(from), value(to))?,
            (None, None) => {}
        }
    }
    Ok(())
}

/// The action's mark, terraform's way: `+` create, `~` change in place, `-` delete, `±` brought back from
/// the recycle bin, `!` refused, `=` unchanged.
fn symbol(action: Action) -> char {
    match action {
        Action::Create => '+',
        Action::Update | Action::Adopt | Action::Drift => '~',
        Action::Delete | Action::Retain => '-',
        Action::Restore => '±',
        Action::Refused => '!',
        Action::Unchanged => '=',
    }
}

/// `+ Kind/ns/name action`, with the invitee's address for an invitation.
fn headline(c: &Change, action: &str) -> String {
    let mut s = format!("{} {} {action}", symbol(c.action), c.object);
    if c.drift && c.action != Action::Drift {
        s.push_str(" (drift)");
    }
    if let Some(who) = &c.subject {
        s.push_str(&format!(" <{who}>"));
    }
    s
}

fn write_change(out: &mut dyn Write, c: &Change) -> io::Result<()> {
    writeln!(out, "{}", headline(c, c.action.as_str()))?;
    if let Some(r) = &c.refusal {
        writeln!(out, "    ! {r}")?;
    }
    write_diff(out, &c.diff)?;
    if let Some(n) = &c.note {
        writeln!(out, "    # {n}")?;
    }
    Ok(())
}

pub fn summary_line(s: &Summary) -> String {
    let mut parts = vec![format!("{} to create", s.create), format!("{} to update", s.update), format!("{} to delete", s.delete)];
    for (n, label) in [(s.adopt, "to adopt"), (s.restore, "to restore"), (s.retain, "to release (Retain)")] {
        if n > 0 {
            parts.push(format!("{n} {label}"));
        }
    }
    parts.push(format!("{} unchanged", s.unchanged));
    for (n, label) in [(s.refused, "refused"), (s.drift, "drifted (reported only)"), (s.errors, "failed to plan")] {
        if n > 0 {
            parts.push(format!("{n} {label}"));
        }
    }
    parts.join(", ")
}

fn write_impact(out: &mut dyn Write, impact: &[ImpactLine]) -> io::Result<()> {
    if impact.is_empty() {
        return Ok(());
    }
    writeln!(out, "\nAccess impact:")?;
    for l in impact {
        let mark = match l.effect {
            Effect::Grants => "+",
            Effect::Removes => "-",
        };
        writeln!(out, "  {mark} {}: {}", l.tenant, l.message)?;
    }
    Ok(())
}

/// Sync jobs' part of the last line: the user writes pending (plan) or made (apply), and failed runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct SyncTotals {
    pub jobs: usize,
    pub writes: u64,
    pub failed: usize,
}

impl SyncTotals {
    fn clause(&self, done: &str) -> Option<String> {
        if self.jobs == 0 {
            return None;
        }
        let mut s = format!("sync: {} user write(s) {done}", self.writes);
        if self.failed > 0 {
            s.push_str(&format!(", {} job(s) failed", self.failed));
        }
        Some(s)
    }
}

/// Every change, error and note; unchanged objects only with `show_unchanged` or a note to tell (the
/// summary counts them all).
pub fn write_plan(out: &mut dyn Write, plan: &Plan, impact: &[ImpactLine], show_unchanged: bool) -> io::Result<()> {
    let standing = standing_refusals(plan);
    for c in plan.changes.iter().filter(|c| show_unchanged || c.action != Action::Unchanged || c.note.is_some()) {
        if !standing.contains(&c.object) {
            write_change(out, c)?;
        }
    }
    write_standing(out, plan, &standing, show_unchanged)?;
    for e in &plan.errors {
        writeln!(out, "{} error\n    ! {}", e.object, e.message)?;
    }
    for n in &plan.notes {
        writeln!(out, "note: {n}")?;
    }
    write_impact(out, impact)?;
    write_rules_hint(out, plan)
}

/// Refusals that stand whatever this plan does: the object is refused and nothing in its tenant's
/// settings changes with the plan. They are listed once, grouped by reason, not in full per object, so a
/// known refusal does not fill every plan and pull-request comment.
pub fn standing_refusals(plan: &Plan) -> BTreeSet<ObjectRef> {
    let settled = |tenant: &str| {
        let tenant_listed =
            plan.changes.iter().any(|c| c.object.kind == Kind::Tenant && c.tenant_id.eq_ignore_ascii_case(tenant));
        let settings_change = plan
            .changes
            .iter()
            .any(|c| c.tenant_id.eq_ignore_ascii_case(tenant) && c.action.writes() && c.object.kind != Kind::GuestInvitation);
        tenant_listed && !settings_change
    };
    plan.changes.iter().filter(|c| c.action == Action::Refused && settled(&c.tenant_id)).map(|c| c.object.clone()).collect()
}

/// How many objects of one standing refusal are named unless `--show-unchanged`.
const STANDING_SHOWN: usize = 5;

fn write_standing(out: &mut dyn Write, plan: &Plan, standing: &BTreeSet<ObjectRef>, show_all: bool) -> io::Result<()> {
    if standing.is_empty() {
        return Ok(());
    }
    let mut by_reason: BTreeMap<String, Vec<&Change>> = BTreeMap::new();
    for c in plan.changes.iter().filter(|c| standing.contains(&c.object)) {
        by_reason.entry(c.refusal.as_ref().map_or_else(String::new, ToString::to_string)).or_default().push(c);
    }
    writeln!(out, "! {} standing refusal(s): refused whatever this plan does, nothing is written for them", standing.len())?;
    for (reason, changes) in by_reason {
        writeln!(out, "    ! {reason}")?;
        let shown = if show_all { changes.len() } else { STANDING_SHOWN };
        for c in changes.iter().take(shown) {
            let who = c.subject.as_ref().map_or_else(String::new, |s| format!(" <{s}>"));
            writeln!(out, "        {}{who}", c.object)?;
        }
        if changes.len() > shown {
            writeln!(out, "        and {} more (--show-unchanged lists them)", changes.len() - shown)?;
        }
    }
    Ok(())
}

/// The rules (R1…R18) the plan's refusals name, each once.
fn rules_named(plan: &Plan) -> Vec<String> {
    let texts = plan
        .changes
        .iter()
        .filter_map(|c| c.refusal.as_ref().map(ToString::to_string))
        .chain(plan.errors.iter().map(|e| e.message.clone()));
    let mut rules = BTreeSet::new();
    for text in texts {
        for word in text.split(|ch: char| !ch.is_ascii_alphanumeric()) {
            if let Some(n) = word.strip_prefix('R').and_then(|n| n.parse::<u8>().ok()).filter(|n| (1..=18).contains(n)) {
                rules.insert(n);
            }
        }
    }
    rules.into_iter().map(|n| format!("R{n}")).collect()
}

/// Where the rules named by refusals are explained.
fn write_rules_hint(out: &mut dyn Write, plan: &Plan) -> io::Result<()> {
    let rules = rules_named(plan);
    if let Some(first) = rules.first() {
        writeln!(
            out,
            "note: rule(s) {} decided the refusals above: `entente rules {first}` explains one (also docs/rules.md#{})",
            rules.join(", "),
            first.to_ascii_lowercase()
        )?;
    }
    Ok(())
}

/// The plan's last line: everything it would do, object changes and sync writes alike, and what stops it.
pub fn plan_footer(plan: &Plan, sync: SyncTotals) -> String {
    let s = plan.summary();
    let mut line = summary_line(&s);
    if let Some(clause) = sync.clause("pending") {
        line.push_str(&format!("; {clause}"));
    }
    if plan.has_writes() || sync.writes > 0 { format!("Plan: {line}.") } else { format!("No changes: {line}.") }
}

fn past(action: Action) -> &'static str {
    match action {
        Action::Create => "created",
        Action::Update => "updated",
        Action::Delete => "deleted",
        Action::Adopt => "adopted",
        Action::Restore => "restored",
        Action::Retain => "released (kept in the directory)",
        Action::Unchanged => "unchanged",
        Action::Refused => "refused",
        Action::Drift => "drift reported",
    }
}

/// What an invitation came back with. Graph's invitation answer carries no user principal name (the next
/// read has it) and an adopted user no redeem URL: what is not known is left out, not printed empty.
fn write_invited(out: &mut dyn Write, i: &crate::core::operation::InvitationResult) -> io::Result<()> {
    match i.user_principal_name.as_str() {
        "" => writeln!(out, "    invited: user {}, {}", i.user_id, i.status)?,
        upn => writeln!(out, "    invited: user {} ({upn}), {}", i.user_id, i.status)?,
    }
    match i.invite_redeem_url.as_str() {
        "" => writeln!(out, "    no invitation sent: the user with this address was already there"),
        url => writeln!(out, "    redeem URL: {url}"),
    }
}

/// What an apply did, counted for its last line.
#[derive(Clone, Copy, Debug, Default)]
pub struct ApplyCounts {
    pub done: usize,
    pub refused: usize,
    pub failed: usize,
}

/// One change's result, as it lands, counted into `n`; a standing refusal is only counted (the apply's
/// tail lists those once).
pub fn write_result(out: &mut dyn Write, c: &Change, r: &ChangeResult, standing: bool, n: &mut ApplyCounts) -> io::Result<()> {
    match r {
        ChangeResult::Nothing => match c.action {
            Action::Refused | Action::Drift => {
                if c.action == Action::Refused {
                    n.refused += 1;
                }
                if !standing {
                    write_change(out, c)?;
                }
            }
            _ => {}
        },
        ChangeResult::Applied { outcomes, .. } => {
            n.done += 1;
            writeln!(out, "{}", headline(c, past(c.action)))?;
            write_diff(out, &c.diff)?;
            for o in outcomes {
                if let Outcome::Invited(i) = o {
                    write_invited(out, i)?;
                }
            }
        }
        ChangeResult::Refused { refusal } => {
            n.refused += 1;
            writeln!(out, "{}\n    ! {refusal}", headline(c, "refused"))?;
        }
        ChangeResult::Failed { message, .. } => {
            n.failed += 1;
            writeln!(out, "{}\n    ! {message}", headline(c, "failed"))?;
        }
        ChangeResult::Skipped { reason } => {
            n.failed += 1;
            writeln!(out, "{}\n    ! {reason}", headline(c, "skipped"))?;
        }
    }
    out.flush()
}

/// What follows the changes of an apply: its standing refusals, the objects that failed to plan and the
/// plan's notes.
pub fn write_apply_tail(out: &mut dyn Write, plan: &Plan, standing: &BTreeSet<ObjectRef>) -> io::Result<()> {
    write_standing(out, plan, standing, false)?;
    for e in &plan.errors {
        writeln!(out, "{} error\n    ! {}", e.object, e.message)?;
    }
    for n in &plan.notes {
        writeln!(out, "note: {n}")?;
    }
    Ok(())
}

/// The apply's last line: writes made, objects changed, refused and failed, and the sync jobs' writes.
pub fn apply_footer(plan: &Plan, report: &ApplyReport, n: ApplyCounts, sync: SyncTotals) -> String {
    let unchanged = plan.summary().unchanged;
    let ApplyCounts { done, refused, failed } = n;
    let mut tail = format!(
        "{} write(s); {done} changed, {unchanged} unchanged, {refused} refused, {failed} failed{}",
        report.writes,
        if plan.errors.is_empty() { String::new() } else { format!(", {} failed to plan", plan.errors.len()) }
    );
    if let Some(clause) = sync.clause("made") {
        tail.push_str(&format!("; {clause}"));
    }
    if done == 0 && failed == 0 && sync.writes == 0 && sync.failed == 0 {
        format!("No changes: {tail}.")
    } else {
        format!("Apply complete: {tail}.")
    }
}

/// An apply that wrote nothing because objects failed to plan: every error, then why nothing was applied.
pub fn write_refused_apply(out: &mut dyn Write, plan: &Plan) -> io::Result<()> {
    for e in &plan.errors {
        writeln!(out, "{} error\n    ! {}", e.object, e.message)?;
    }
    let pending = plan.changes.iter().filter(|c| c.action.writes()).count();
    writeln!(
        out,
        "\nNothing applied: {} object(s) failed to plan, so none of the {pending} planned change(s) was written \
         (all or nothing). Fix the errors above and apply again.",
        plan.errors.len()
    )
}

pub fn plan_json(plan: &Plan, impact: &[ImpactLine]) -> Value {
    json!({
        "changes": plan.changes,
        "errors": plan.errors,
        "notes": plan.notes,
        "accessImpact": impact,
        "summary": plan.summary(),
        "hasChanges": plan.has_writes(),
    })
}

fn md_value(v: &Option<Value>) -> String {
    v.as_ref().map_or_else(|| "—".to_string(), |v| format!("`{}`", value(v).replace('|', "\\|")))
}

/// The plan as a pull-request comment: what changes, what is refused, who gains or loses access.
pub fn plan_markdown(plan: &Plan, impact: &[ImpactLine], sync: SyncTotals) -> String {
    let mut s = String::from("### entente plan\n\n");
    s.push_str(&format!("**{}**\n\n", plan_footer(plan, sync)));
    s.push_str(&deletion_warning(plan));
    let standing = standing_refusals(plan);
    let changed: Vec<&Change> =
        plan.changes.iter().filter(|c| c.action != Action::Unchanged && !standing.contains(&c.object)).collect();
    if !changed.is_empty() {
        s.push_str("| Object | Action | Details |\n|---|---|---|\n");
        for c in changed {
            let mut details: Vec<String> =
                c.diff.iter().map(|d| format!("`{}`: {} → {}", d.path, md_value(&d.from), md_value(&d.to))).collect();
            if let Some(r) = &c.refusal {
                details.insert(0, format!("⛔ {r}"));
            }
            if let Some(n) = &c.note {
                details.push(format!("_{n}_"));
            }
            let action = if c.drift { format!("{} (drift)", c.action.as_str()) } else { c.action.as_str().to_string() };
            let who = c.subject.as_ref().map_or_else(String::new, |w| format!(" &lt;{w}&gt;"));
            s.push_str(&format!("| `{}`{who} | {action} | {} |\n", c.object, details.join("<br>")));
        }
    }
    if !impact.is_empty() {
        s.push_str("\n#### Access impact\n\n");
        for l in impact {
            let mark = match l.effect {
                Effect::Grants => "🟢 grants",
                Effect::Removes => "🔴 removes",
            };
            s.push_str(&format!("- {mark} — **{}**: {}\n", l.tenant, l.message));
        }
    }
    if !standing.is_empty() {
        s.push_str(&format!(
            "\n<details><summary>⛔ {} standing refusal(s): refused whatever this plan does</summary>\n\n",
            standing.len()
        ));
        for c in plan.changes.iter().filter(|c| standing.contains(&c.object)) {
            let who = c.subject.as_ref().map_or_else(String::new, |w| format!(" &lt;{w}&gt;"));
            let why = c.refusal.as_ref().map_or_else(String::new, ToString::to_string);
            s.push_str(&format!("- `{}`{who}: {why}\n", c.object));
        }
        s.push_str("\n</details>\n");
    }
    for e in &plan.errors {
        s.push_str(&format!("\n> ❗ `{}`: {}\n", e.object, e.message));
    }
    for n in &plan.notes {
        s.push_str(&format!("\n> {n}\n"));
    }
    let rules = rules_named(plan);
    if !rules.is_empty() {
        s.push_str(&format!(
            "\n_Rules named above ({}): `entente rules RULE` or docs/rules.md explains each._\n",
            rules.join(", ")
        ));
    }
    s
}

/// A warning first, when the plan deletes: how many objects and guests, and that they can be restored.
fn deletion_warning(plan: &Plan) -> String {
    let deletes: Vec<&Change> = plan.changes.iter().filter(|c| c.action == Action::Delete).collect();
    if deletes.is_empty() {
        return String::new();
    }
    let guests = deletes.iter().filter(|c| c.object.kind == Kind::GuestInvitation).count();
    let mut s = format!("> [!WARNING]\n> This plan **deletes {} object(s)**", deletes.len());
    if guests > 0 {
        s.push_str(&format!(
            ", **{guests} of them guests**: each loses their account and every access it gives (groups and \
             access packages are listed under Access impact). A deleted guest stays in the recycle bin for 30 days; \
             putting the GuestInvitation back restores the same account without a new invitation email"
        ));
    }
    s.push_str(".\n\n");
    s
}

pub fn apply_json(plan: &Plan, report: &ApplyReport) -> Value {
    let results: Vec<Value> = plan
        .changes
        .iter()
        .zip(&report.results)
        .map(|(c, r)| json!({ "object": c.object, "action": c.action, "result": r }))
        .collect();
    json!({ "plan": plan_json(plan, &[]), "results": results, "writes": report.writes })
}
