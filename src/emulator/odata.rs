//! OData query options as Graph's directory APIs take them: `$select`, `$top`, `$skiptoken`, `$count`
//! and a `$filter` subset (`eq`, `ne`, `gt`/`ge`/`lt`/`le`, `in`, `startsWith`, `endsWith`, `and`,
//! `or`, `not`, parentheses, `null`/`true`/`false` and string literals). Like Graph, `ne`, `not` and
//! `endsWith` are advanced queries: they need `ConsistencyLevel: eventual` and `$count=true`. String
//! comparisons ignore case, as directory properties do.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::errors::GraphError;
use super::router::GraphRequest;
use super::server::Ctx;

/// `$select`: the named properties, spelled as the entity spells them. `None` without `$select`.
pub fn select(req: &GraphRequest, entity: &str, known: &[&'static str]) -> Result<Option<Vec<&'static str>>, GraphError> {
    let Some(raw) = req.param("select") else { return Ok(None) };
    let mut out = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some(k) = known.iter().find(|k| k.eq_ignore_ascii_case(name)) else {
            return Err(GraphError::bad_request(format!(
                "Could not find a property named '{name}' on type 'microsoft.graph.{entity}'."
            )));
        };
        if !out.contains(k) {
            out.push(*k);
        }
    }
    Ok(Some(out))
}

/// Keeps only `props` of an object (all of them when `props` is `None` — then `default` decides).
pub fn project(full: &Map<String, Value>, props: &[&str]) -> Map<String, Value> {
    props.iter().filter_map(|p| full.get(*p).map(|v| (p.to_string(), v.clone()))).collect()
}

/// `$top`: `default` when absent; 1 to `max`, else Graph's 400.
pub fn top(req: &GraphRequest, default: usize, max: usize) -> Result<usize, GraphError> {
    match req.param("top") {
        None => Ok(default),
        Some(t) => match t.trim().parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(GraphError::bad_request(format!(
                "Invalid page size specified: '{t}'. Must be between 1 and {max} inclusive."
            ))),
        },
    }
}

/// Refuses query options a resource does not support (`$skip` on directory objects, …).
pub fn refuse(req: &GraphRequest, options: &[&str]) -> Result<(), GraphError> {
    for o in options {
        if req.param(o).is_some() {
            return Err(GraphError::unsupported_query(format!(
                "The query specified in the URI is not valid: '${o}' is not supported by this request."
            )));
        }
    }
    Ok(())
}

/// `$count=true`, which (for directory objects) needs `ConsistencyLevel: eventual`.
pub fn count(req: &GraphRequest) -> Result<bool, GraphError> {
    match req.param("count").map(|c| c.trim().to_ascii_lowercase()) {
        None => Ok(false),
        Some(c) if c == "false" => Ok(false),
        Some(c) if c == "true" => {
            if req.eventual() {
                Ok(true)
            } else {
                Err(GraphError::bad_request("$count is not currently supported without the header 'ConsistencyLevel: eventual'."))
            }
        }
        Some(c) => Err(GraphError::bad_request(format!("Invalid value '{c}' for $count."))),
    }
}

/// An opaque continuation token (base64url JSON).
pub fn encode_token(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap_or_default())
}

pub fn decode_token(s: &str, what: &str) -> Result<Value, GraphError> {
    URL_SAFE_NO_PAD
        .decode(s.trim().trim_end_matches('='))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| GraphError::bad_request(format!("The {what} '{s}' is not valid.")))
}

/// The request's URL with `$skiptoken` (or another option) replaced: a next link.
pub fn link_with(ctx: &Ctx, req: &GraphRequest, option: &str, value: &str, keep: &[&str]) -> String {
    // OData writes option names with a literal `$` (`$skiptoken=…`); values are percent-encoded.
    let pair = |k: &str, v: &str| {
        format!(
            "{}={}",
            percent_encoding::utf8_percent_encode(k, QUERY_KEY),
            percent_encoding::utf8_percent_encode(v, QUERY_VALUE)
        )
    };
    let mut pairs: Vec<String> = req
        .query
        .iter()
        .filter(|(k, _)| keep.iter().any(|o| o.eq_ignore_ascii_case(k.trim_start_matches('$'))))
        .map(|(k, v)| pair(k, v))
        .collect();
    pairs.push(pair(option, value));
    let query = pairs.join("&");
    let path: String = req.segments.iter().map(|s| format!("/{}", percent_encoding::utf8_percent_encode(s, SEGMENT))).collect();
    format!("{}?{query}", ctx.url(req.version, &path))
}

const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b',')
    .remove(b'(')
    .remove(b')')
    .remove(b'\'')
    .remove(b'@');
const QUERY_KEY: &percent_encoding::AsciiSet = &QUERY_VALUE.remove(b'$');

const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b'%');

// ---------------------------------------------------------------------------------------------
// $filter

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare { prop: String, op: Op, value: Value },
    In { prop: String, values: Vec<Value> },
    StartsWith { prop: String, value: String },
    EndsWith { prop: String, value: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    Open,
    Close,
    Comma,
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' => i += 1,
            '(' => {
                out.push(Tok::Open);
                i += 1;
            }
            ')' => {
                out.push(Tok::Close);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            '\'' => {
                let mut text = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("unterminated string literal".into()),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            text.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            text.push(*ch);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(text));
            }
            c if c.is_ascii_digit() || c == '-' => {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                out.push(Tok::Num(text.parse().map_err(|_| format!("invalid number {text}"))?));
            }
            c if c.is_alphanumeric() || c == '_' || c == '@' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || "_./@".contains(chars[i])) {
                    i += 1;
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(format!("unexpected character {other:?}")),
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek_word(&self, w: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Ident(x)) if x.eq_ignore_ascii_case(w))
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn expect(&mut self, t: Tok) -> Result<(), String> {
        match self.next() {
            Some(x) if x == t => Ok(()),
            other => Err(format!("expected {t:?}, found {other:?}")),
        }
    }
    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.peek_word("or") {
            self.pos += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.peek_word("and") {
            self.pos += 1;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }
    fn unary(&mut self) -> Result<Expr, String> {
        if self.peek_word("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.toks.get(self.pos) == Some(&Tok::Open) {
            self.pos += 1;
            let e = self.or()?;
            self.expect(Tok::Close)?;
            return Ok(e);
        }
        self.comparison()
    }
    fn literal(&mut self) -> Result<Value, String> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Value::String(s)),
            Some(Tok::Num(n)) => Ok(serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)),
            Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("null") => Ok(Value::Null),
            Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            other => Err(format!("expected a literal, found {other:?}")),
        }
    }
    fn comparison(&mut self) -> Result<Expr, String> {
        let Some(Tok::Ident(name)) = self.next() else { return Err("expected a property or function".into()) };
        let lower = name.to_ascii_lowercase();
        if (lower == "startswith" || lower == "endswith") && self.toks.get(self.pos) == Some(&Tok::Open) {
            self.pos += 1;
            let Some(Tok::Ident(prop)) = self.next() else { return Err(format!("{name} needs a property first")) };
            self.expect(Tok::Comma)?;
            let Value::String(value) = self.literal()? else { return Err(format!("{name} needs a string")) };
            self.expect(Tok::Close)?;
            return Ok(if lower == "startswith" { Expr::StartsWith { prop, value } } else { Expr::EndsWith { prop, value } });
        }
        let Some(Tok::Ident(op)) = self.next() else { return Err(format!("expected an operator after {name}")) };
        let op = match op.to_ascii_lowercase().as_str() {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            "in" => {
                self.expect(Tok::Open)?;
                let mut values = vec![self.literal()?];
                while self.toks.get(self.pos) == Some(&Tok::Comma) {
                    self.pos += 1;
                    values.push(self.literal()?);
                }
                self.expect(Tok::Close)?;
                return Ok(Expr::In { prop: name, values });
            }
            other => return Err(format!("unsupported operator {other}")),
        };
        Ok(Expr::Compare { prop: name, op, value: self.literal()? })
    }
}

/// Parses a `$filter` and checks its properties against `filterable` (renaming them to their
/// canonical spelling) and the advanced-query rule.
pub fn filter(req: &GraphRequest, entity: &str, filterable: &[&str]) -> Result<Option<Expr>, GraphError> {
    let Some(raw) = req.param("filter") else { return Ok(None) };
    let mut p = Parser { toks: lex(raw).map_err(|e| invalid_filter(raw, &e))?, pos: 0 };
    let mut expr = p.or().map_err(|e| invalid_filter(raw, &e))?;
    if p.pos < p.toks.len() {
        return Err(invalid_filter(raw, "unexpected text after the expression"));
    }
    canonical_props(&mut expr, entity, filterable)?;
    if advanced(&expr) && !(req.eventual() && req.param("count").is_some_and(|c| c.eq_ignore_ascii_case("true"))) {
        return Err(GraphError::unsupported_query(format!(
            "Unsupported or invalid query filter clause specified for property of resource '{entity}': 'ne', 'not' and \
             'endsWith' need the advanced query parameters (header ConsistencyLevel: eventual and $count=true)."
        )));
    }
    Ok(Some(expr))
}

fn invalid_filter(raw: &str, why: &str) -> GraphError {
    GraphError::bad_request(format!("Invalid filter clause: {why} (in '{raw}')."))
}

fn canonical_props(e: &mut Expr, entity: &str, filterable: &[&str]) -> Result<(), GraphError> {
    let fix = |prop: &mut String| -> Result<(), GraphError> {
        match filterable.iter().find(|f| f.eq_ignore_ascii_case(prop)) {
            Some(f) => {
                *prop = f.to_string();
                Ok(())
            }
            None => Err(GraphError::unsupported_query(format!(
                "Unsupported or invalid query filter clause specified for property '{prop}' of resource '{entity}'."
            ))),
        }
    };
    match e {
        Expr::And(a, b) | Expr::Or(a, b) => {
            canonical_props(a, entity, filterable)?;
            canonical_props(b, entity, filterable)
        }
        Expr::Not(a) => canonical_props(a, entity, filterable),
        Expr::Compare { prop, .. } | Expr::In { prop, .. } | Expr::StartsWith { prop, .. } | Expr::EndsWith { prop, .. } => {
            fix(prop)
        }
    }
}

fn advanced(e: &Expr) -> bool {
    match e {
        Expr::And(a, b) | Expr::Or(a, b) => advanced(a) || advanced(b),
        Expr::Not(_) | Expr::EndsWith { .. } => true,
        Expr::Compare { op, .. } => *op == Op::Ne,
        Expr::In { .. } | Expr::StartsWith { .. } => false,
    }
}

/// Whether an object (its full representation) matches.
pub fn matches(e: &Expr, obj: &Map<String, Value>) -> bool {
    let get = |p: &str| obj.get(p).unwrap_or(&Value::Null);
    match e {
        Expr::And(a, b) => matches(a, obj) && matches(b, obj),
        Expr::Or(a, b) => matches(a, obj) || matches(b, obj),
        Expr::Not(a) => !matches(a, obj),
        Expr::Compare { prop, op, value } => compare(get(prop), *op, value),
        Expr::In { prop, values } => values.iter().any(|v| compare(get(prop), Op::Eq, v)),
        Expr::StartsWith { prop, value } => {
            get(prop).as_str().is_some_and(|s| s.to_lowercase().starts_with(&value.to_lowercase()))
        }
        Expr::EndsWith { prop, value } => get(prop).as_str().is_some_and(|s| s.to_lowercase().ends_with(&value.to_lowercase())),
    }
}

fn compare(actual: &Value, op: Op, expected: &Value) -> bool {
    use std::cmp::Ordering;
    let ord: Option<Ordering> = match (actual, expected) {
        (Value::String(a), Value::String(b)) => Some(a.to_lowercase().cmp(&b.to_lowercase())),
        (Value::Number(a), Value::Number(b)) => a.as_f64().partial_cmp(&b.as_f64()),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        // A collection property matches when one of its values does (e.g. `otherMails eq 'x'`).
        (Value::Array(items), _) => {
            return items.iter().any(|i| compare(i, op, expected));
        }
        _ => None,
    };
    match (op, ord) {
        (Op::Eq, o) => o == Some(Ordering::Equal),
        (Op::Ne, o) => o != Some(Ordering::Equal),
        (Op::Gt, Some(o)) => o == Ordering::Greater,
        (Op::Ge, Some(o)) => o != Ordering::Less,
        (Op::Lt, Some(o)) => o == Ordering::Less,
        (Op::Le, Some(o)) => o != Ordering::Greater,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(s: &str) -> Expr {
        let mut p = Parser { toks: lex(s).unwrap(), pos: 0 };
        p.or().unwrap()
    }

    #[test]
    fn filters_parse_and_match() {
        let user = json!({"userType": "Guest", "mail": "Alice@Fabrikam.com", "accountEnabled": true, "otherMails": ["a@x.com"]});
        let user = user.as_object().unwrap();
        assert!(matches(&parse("userType eq 'Guest'"), user));
        assert!(matches(&parse("mail eq 'alice@fabrikam.com' and userType eq 'Guest'"), user));
        assert!(!matches(&parse("userType eq 'Member' or (accountEnabled eq false)"), user));
        assert!(matches(&parse("startswith(mail,'ali')"), user));
        assert!(matches(&parse("userType in ('Member', 'Guest')"), user));
        assert!(matches(&parse("creationType eq null"), user));
        assert!(matches(&parse("otherMails eq 'A@x.com'"), user));
        assert_eq!(
            parse("mail eq 'O''Brien@x.com'"),
            Expr::Compare { prop: "mail".into(), op: Op::Eq, value: json!("O'Brien@x.com") }
        );
        assert!(lex("mail eq 'open").is_err());
    }
}
