//! The state a delta or skip token carries, shared by `/users/delta` and `/groups/delta`, and the refusal
//! of a token the emulator can no longer honour (400 `syncStateNotFound`). Tokens are opaque to clients (as Graph's): the
//! round (`i`: every object; `c`: changes from `from` to `to` of the directory's feed), where a page ended,
//! the query the round began with, the tenant, when it was issued and the emulator's delta epoch.

use std::sync::atomic::Ordering;

use http::StatusCode;
use serde_json::{Value, json};

use super::errors::GraphError;
use super::odata;
use super::router::GraphResponse;
use super::server::Ctx;

#[derive(Clone, Debug, Default)]
pub(super) struct DeltaToken {
    /// `i`: first round; `c`: changes from `from` to `to`.
    pub phase: String,
    pub from: i64,
    pub to: i64,
    /// The last object served, on a skip token.
    pub after: Option<String>,
    /// The groups a group delta tracks (named by the first round's filter; empty when it tracks every
    /// group, see `feed`); `None` for users.
    pub groups: Option<Vec<String>>,
    /// A group delta of every group of the tenant: the change feed's window (from, to] in which groups
    /// were created or deleted.
    pub feed: Option<(i64, i64)>,
    pub select: Option<String>,
    pub filter: Option<String>,
    pub tenant: String,
    pub issued_ms: i64,
    /// The emulator's delta epoch when issued (a forced resync bumps it).
    pub epoch: i64,
}

impl DeltaToken {
    pub fn encode(&self) -> String {
        let mut v = json!({
            "v": 1, "p": self.phase, "f": self.from, "t": self.to, "a": self.after,
            "sel": self.select, "flt": self.filter, "tid": self.tenant, "iat": self.issued_ms, "ep": self.epoch,
        });
        if let Some(g) = &self.groups {
            v["g"] = json!(g);
        }
        if let Some((from, to)) = self.feed {
            v["ff"] = json!(from);
            v["ft"] = json!(to);
        }
        odata::encode_token(&v)
    }

    /// A token of this emulator (`what`: "delta token" or "skip token", for the error).
    pub fn decode(token: &str, what: &str) -> Result<Self, GraphError> {
        let v = odata::decode_token(token, what)?;
        if v.get("v").and_then(Value::as_i64) != Some(1) {
            return Err(GraphError::bad_request(format!("The {what} '{token}' is not valid.")));
        }
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let n = |k: &str| v.get(k).and_then(Value::as_i64).unwrap_or_default();
        Ok(Self {
            phase: s("p").unwrap_or_default(),
            from: n("f"),
            to: n("t"),
            after: s("a"),
            groups: v
                .get("g")
                .and_then(Value::as_array)
                .map(|g| g.iter().filter_map(Value::as_str).map(str::to_string).collect()),
            feed: v.get("ff").and_then(Value::as_i64).zip(v.get("ft").and_then(Value::as_i64)),
            select: s("sel"),
            filter: s("flt"),
            tenant: s("tid").unwrap_or_default(),
            issued_ms: n("iat"),
            epoch: n("ep"),
        })
    }

    /// Why the token can no longer be honoured (`None`: it can). `end` is the newest position of the feed
    /// (`feed` names it in the reason); `horizon` the oldest it still holds (`i64::MIN`: it holds all). A
    /// token of another tenant is an error, not a resync.
    pub fn stale(&self, ctx: &Ctx, end: i64, horizon: i64, now_ms: i64, feed: &str) -> Result<Option<Stale>, GraphError> {
        if !self.tenant.eq_ignore_ascii_case(ctx.tenant()) {
            return Err(GraphError::bad_request("The delta token was issued for another tenant."));
        }
        let ttl = ctx.state.config.delta_token_ttl.as_millis() as i64;
        Ok(if self.issued_ms + ttl < now_ms {
            Some(Stale::Expired("the delta token has expired (directory delta tokens last 7 days)".into()))
        } else if self.epoch != ctx.state.delta_epoch.load(Ordering::SeqCst) {
            Some(Stale::Reset)
        } else if self.from > end || self.to > end {
            Some(Stale::Expired(format!("the delta token is ahead of {feed}")))
        } else if self.to < horizon || (self.phase == "c" && self.from < horizon) {
            Some(Stale::Expired(format!("{feed} no longer holds the changes since the delta token")))
        } else {
            None
        })
    }
}

/// Why a delta token can no longer be honoured.
pub(super) enum Stale {
    /// Too old, or from a feed this one never was.
    Expired(String),
    /// The service dropped its delta state (`POST /_emulator/delta/invalidate`).
    Reset,
}

/// The answer to a stale token: Graph's documented one for directory objects (delta query overview, "a
/// 40X-series error with error codes such as syncStateNotFound"), a 400 with an OData error body, so SDKs
/// raise their `ODataError` with the code; the client starts a new initial round.
pub(super) fn refusal(ctx: &Ctx, stale: Stale) -> GraphResponse {
    let why = match stale {
        Stale::Expired(why) => why,
        Stale::Reset => "the service dropped its delta state".to_string(),
    };
    ctx.error_response(&GraphError::new(
        StatusCode::BAD_REQUEST,
        "syncStateNotFound",
        format!("The sync state could not be found: {why}. Start a new initial round (without a token)."),
    ))
}
