//! A per-tenant client-side rate limiter sized from Graph's documented limits (graph-contract Part 2),
//! so entente stays just under them instead of bouncing off them with 429s:
//!
//! - invitation manager: 150 requests per 5 s per tenant;
//! - identity and access writes: 3,000 per 150 s per app and tenant;
//! - identity and access resource units (RU) per 10 s per app and tenant, by tenant size: S (< 50
//!   users) 3,500, M (50–500) 5,000, L (> 500) 8,000. entente starts at S and moves up when it learns
//!   the user count; `x-ms-throttle-limit-percentage` (sent past 80 % of a limit) slows it down.
//!
//! Each limit is a token bucket whose burst plus refill over the window stays at `headroom` (90 %) of
//! the limit in *any* window: burst = 10 % of the limit, refill = 80 % of the limit per window.
//! A 429 or 503 with `Retry-After` pauses every request to the tenant until then.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;

/// What one request costs against the limits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cost {
    /// A read of this many resource units.
    Read(f64),
    /// A write (1 RU and 1 write).
    Write,
    /// `POST /invitations` (1 RU, 1 write, 1 invitation).
    Invitation,
    /// A `$batch` of `reads` RU and `writes` writes (each item is throttled on its own by Graph).
    Batch { reads: f64, writes: f64 },
}

impl Cost {
    /// The documented resource-unit cost of a read (graph-contract Part 2): `GET users` (and delta) 2,
    /// `GET groups/{id}/members` 3, `memberOf` 2, any other read 1; `$select` −1, `$expand` +1, `$top`
    /// under 20 −1; never below 1.
    pub fn read(url: &reqwest::Url) -> Self {
        let path = url.path();
        let path = path.split_once("/v1.0").or_else(|| path.split_once("/beta")).map_or(path, |(_, rest)| rest);
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut ru: f64 = match segments.as_slice() {
            ["users"] | ["users", "delta" | "delta()"] => 2.0,
            ["groups", _, "members"] => 3.0,
            [_, _, "memberOf"] => 2.0,
            _ => 1.0,
        };
        for (k, v) in url.query_pairs() {
            match k.trim_start_matches('$') {
                "select" => ru -= 1.0,
                "expand" => ru += 1.0,
                "top" if v.trim().parse::<u32>().is_ok_and(|t| t < 20) => ru -= 1.0,
                _ => {}
            }
        }
        Cost::Read(ru.max(1.0))
    }
}

/// Tenant size bucket for the resource-unit limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TenantSize {
    S,
    M,
    L,
}

impl TenantSize {
    pub fn from_user_count(users: u64) -> Self {
        match users {
            0..50 => Self::S,
            50..=500 => Self::M,
            _ => Self::L,
        }
    }
}

/// The limits and how close to them entente goes.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    pub invitations: (f64, Duration),
    pub writes: (f64, Duration),
    /// Resource units per window for S, M and L tenants.
    pub resource_units: ([f64; 3], Duration),
    /// The size assumed until the user count is known.
    pub size: TenantSize,
    /// Fraction of each limit entente allows itself in any window.
    pub headroom: f64,
    /// `false`: no client-side limiting (tests that exercise the server's 429s).
    pub enabled: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            invitations: (150.0, Duration::from_secs(5)),
            writes: (3_000.0, Duration::from_secs(150)),
            resource_units: ([3_500.0, 5_000.0, 8_000.0], Duration::from_secs(10)),
            size: TenantSize::S,
            headroom: 0.9,
            enabled: true,
        }
    }
}

impl Limits {
    pub fn unlimited() -> Self {
        Self { enabled: false, ..Self::default() }
    }

    fn resource_units_for(&self, size: TenantSize) -> f64 {
        let [s, m, l] = self.resource_units.0;
        match size {
            TenantSize::S => s,
            TenantSize::M => m,
            TenantSize::L => l,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    capacity: f64,
    /// Tokens per second.
    rate: f64,
    tokens: f64,
    last: Instant,
    /// Slow-down factor from `x-ms-throttle-limit-percentage` (1.0 = none).
    slowdown: f64,
}

impl Bucket {
    fn new(limit: f64, window: Duration, headroom: f64) -> Self {
        let burst = (limit * (1.0 - headroom)).max(1.0);
        let capacity = burst.min(limit * headroom);
        let rate = (limit * headroom - capacity).max(1.0) / window.as_secs_f64();
        Self { capacity, rate, tokens: capacity, last: Instant::now(), slowdown: 1.0 }
    }
    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate / self.slowdown).min(self.capacity);
        self.last = now;
    }
    /// How long until `cost` tokens are there (at least 1 µs, so rounding never lets a request through
    /// early), or `None` when they are. A cost above the capacity goes when the bucket is full (the debt
    /// is paid by later requests).
    fn shortfall(&self, cost: f64) -> Option<Duration> {
        if cost <= 0.0 {
            return None;
        }
        let missing = cost.min(self.capacity) - self.tokens;
        (missing > 1e-9).then(|| Duration::from_secs_f64(missing * self.slowdown / self.rate).max(Duration::from_micros(1)))
    }
}

#[derive(Debug)]
struct State {
    invitations: Bucket,
    writes: Bucket,
    resource_units: Bucket,
    size: TenantSize,
    paused_until: Option<Instant>,
}

/// The limiter of one tenant (one app registration per tenant).
#[derive(Debug)]
pub struct RateLimiter {
    limits: Limits,
    state: Mutex<State>,
}

impl RateLimiter {
    pub fn new(limits: Limits) -> Self {
        let h = limits.headroom;
        let state = State {
            invitations: Bucket::new(limits.invitations.0, limits.invitations.1, h),
            writes: Bucket::new(limits.writes.0, limits.writes.1, h),
            resource_units: Bucket::new(limits.resource_units_for(limits.size), limits.resource_units.1, h),
            size: limits.size,
            paused_until: None,
        };
        Self { limits, state: Mutex::new(state) }
    }

    /// Waits until the request may go.
    pub async fn acquire(&self, cost: Cost) {
        if !self.limits.enabled {
            return;
        }
        loop {
            match self.try_acquire(cost, Instant::now()) {
                None => return,
                Some(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// Takes the cost from every bucket it concerns, all or nothing; else how long to wait.
    fn try_acquire(&self, cost: Cost, now: Instant) -> Option<Duration> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(until) = s.paused_until {
            if until > now {
                return Some(until - now);
            }
            s.paused_until = None;
        }
        let (ru, writes, invitations) = match cost {
            Cost::Read(ru) => (ru.max(1.0), 0.0, 0.0),
            Cost::Write => (1.0, 1.0, 0.0),
            Cost::Invitation => (1.0, 1.0, 1.0),
            Cost::Batch { reads, writes } => (reads + writes, writes, 0.0),
        };
        // Check every bucket first so a refusal takes nothing.
        let mut wait = Duration::ZERO;
        let State { invitations: inv_bucket, writes: write_bucket, resource_units: ru_bucket, .. } = &mut *s;
        for (bucket, c) in [(&mut *ru_bucket, ru), (&mut *write_bucket, writes), (&mut *inv_bucket, invitations)] {
            bucket.refill(now);
            if let Some(w) = bucket.shortfall(c) {
                wait = wait.max(w);
            }
        }
        if wait > Duration::ZERO {
            return Some(wait);
        }
        for (bucket, c) in [(ru_bucket, ru), (write_bucket, writes), (inv_bucket, invitations)] {
            bucket.tokens -= c.max(0.0);
        }
        None
    }

    /// Every request to the tenant waits this long (after a 429/503 with `Retry-After`).
    pub fn pause_for(&self, wait: Duration) {
        if !self.limits.enabled {
            return;
        }
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let until = Instant::now() + wait;
        s.paused_until = Some(s.paused_until.map_or(until, |u| u.max(until)));
    }

    /// Learns from an answer's throttling headers: past 80 % of a limit Graph sends
    /// `x-ms-throttle-limit-percentage` (0.8–1.8); entente slows down in proportion until it stops.
    pub fn observe(&self, headers: &HeaderMap) {
        let pct = headers
            .get("x-ms-throttle-limit-percentage")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok());
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let slowdown = match pct {
            Some(p) if p.is_finite() && p >= 0.8 => (p / 0.7).clamp(1.0, 4.0),
            _ => 1.0,
        };
        let scope_write = headers
            .get("x-ms-throttle-scope")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split('/').nth(1).is_some_and(|k| k.eq_ignore_ascii_case("Write")));
        if scope_write {
            s.writes.slowdown = slowdown;
        } else {
            s.resource_units.slowdown = slowdown;
        }
    }

    /// Resizes the resource-unit bucket from the tenant's user count (S/M/L).
    pub fn set_user_count(&self, users: u64) {
        let size = TenantSize::from_user_count(users);
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.size != size {
            let slowdown = s.resource_units.slowdown;
            s.resource_units =
                Bucket::new(self.limits.resource_units_for(size), self.limits.resource_units.1, self.limits.headroom);
            s.resource_units.slowdown = slowdown;
            s.size = size;
        }
    }

    #[cfg(test)]
    pub fn size(&self) -> TenantSize {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `n` requests as fast as the limiter allows, on a virtual clock; returns their times.
    fn schedule(limiter: &RateLimiter, cost: Cost, n: usize) -> Vec<Duration> {
        let start = Instant::now();
        let mut now = start;
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            while let Some(w) = limiter.try_acquire(cost, now) {
                now += w.max(Duration::from_micros(100));
            }
            times.push(now - start);
        }
        times
    }

    fn max_in_window(times: &[Duration], window: Duration) -> usize {
        let mut best = 0;
        let mut j = 0;
        for i in 0..times.len() {
            while times[i] - times[j] >= window {
                j += 1;
            }
            best = best.max(i - j + 1);
        }
        best
    }

    #[test]
    fn invitations_stay_under_150_per_5_seconds_in_any_window() {
        let limiter = RateLimiter::new(Limits::default());
        let times = schedule(&limiter, Cost::Invitation, 1_000);
        let worst = max_in_window(&times, Duration::from_secs(5));
        assert!(worst <= 135, "{worst} invitations in one 5 s window");
        assert!(worst >= 120, "the limiter should not be far below the limit: {worst}");
        // 1,000 invitations at ~27/s take about 37 s, not much more.
        assert!(times.last().unwrap().as_secs_f64() < 45.0, "{:?}", times.last());
    }

    #[test]
    fn writes_stay_under_3000_per_150_seconds() {
        let limiter = RateLimiter::new(Limits::default());
        let times = schedule(&limiter, Cost::Write, 6_000);
        let worst = max_in_window(&times, Duration::from_secs(150));
        assert!((2_500..=2_700).contains(&worst), "{worst} writes in one 150 s window");
    }

    #[test]
    fn resource_units_follow_the_tenant_size() {
        let limiter = RateLimiter::new(Limits::default());
        assert_eq!(limiter.size(), TenantSize::S);
        let s = max_in_window(&schedule(&limiter, Cost::Read(1.0), 20_000), Duration::from_secs(10));
        assert!(s <= 3_150 && s > 3_000, "S: {s}");
        limiter.set_user_count(10_000);
        assert_eq!(limiter.size(), TenantSize::L);
        let l = max_in_window(&schedule(&limiter, Cost::Read(1.0), 40_000), Duration::from_secs(10));
        assert!(l <= 7_200 && l > 6_800, "L: {l}");
        assert_eq!(TenantSize::from_user_count(49), TenantSize::S);
        assert_eq!(TenantSize::from_user_count(50), TenantSize::M);
        assert_eq!(TenantSize::from_user_count(500), TenantSize::M);
        assert_eq!(TenantSize::from_user_count(501), TenantSize::L);
    }

    #[test]
    fn a_pause_holds_every_request_and_throttle_headers_slow_down() {
        let limiter = RateLimiter::new(Limits::default());
        limiter.pause_for(Duration::from_secs(2));
        let wait = limiter.try_acquire(Cost::Read(1.0), Instant::now()).expect("paused");
        assert!(wait > Duration::from_millis(1_900));

        let fast = RateLimiter::new(Limits::default());
        let slow = RateLimiter::new(Limits::default());
        let mut h = HeaderMap::new();
        h.insert("x-ms-throttle-limit-percentage", "1.4".parse().unwrap());
        slow.observe(&h);
        let n_fast = max_in_window(&schedule(&fast, Cost::Read(1.0), 8_000), Duration::from_secs(10));
        let n_slow = max_in_window(&schedule(&slow, Cost::Read(1.0), 8_000), Duration::from_secs(10));
        assert!(n_slow * 3 / 2 < n_fast, "slowed {n_slow} vs {n_fast}");
    }

    #[test]
    fn read_costs_follow_the_documented_table() {
        let cost = |u: &str| match Cost::read(&reqwest::Url::parse(u).unwrap()) {
            Cost::Read(ru) => ru,
            other => panic!("{other:?}"),
        };
        assert_eq!(cost("https://g/v1.0/users?$select=id&$top=999"), 1.0);
        assert_eq!(cost("https://g/v1.0/users"), 2.0);
        assert_eq!(cost("https://g/v1.0/users/delta?$deltatoken=abc"), 2.0);
        assert_eq!(cost("https://g/v1.0/groups/g1/members?$select=id&$top=999"), 2.0);
        assert_eq!(cost("https://g/v1.0/groups/g1/members?$top=5"), 2.0);
        assert_eq!(cost("https://g/v1.0/policies/authorizationPolicy"), 1.0);
        assert_eq!(cost("https://g/beta/policies/b2bManagementPolicies?$select=id"), 1.0, "never below 1");
        assert_eq!(cost("https://g/v1.0/policies/crossTenantAccessPolicy/partners?$expand=identitySynchronization"), 2.0);
    }

    #[test]
    fn a_refused_acquire_takes_nothing() {
        let limiter = RateLimiter::new(Limits { invitations: (10.0, Duration::from_secs(5)), ..Limits::default() });
        let now = Instant::now();
        while limiter.try_acquire(Cost::Invitation, now).is_none() {}
        let before = limiter.state.lock().unwrap().writes.tokens;
        assert!(limiter.try_acquire(Cost::Invitation, now).is_some());
        assert_eq!(limiter.state.lock().unwrap().writes.tokens, before);
    }
}
