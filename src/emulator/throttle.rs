//! Graph's throttling limits (graph-contract Part 2), as token buckets: each limit holds `limit`
//! units and refills continuously at `limit / window`. A request is let through only when every
//! limit that applies to it has room; otherwise it gets 429 with the wait until the fullest one has
//! room again (fractional by nature; written whole or with decimals, see `RetryAfterFormat`).
//! Rejected requests consume nothing.
//!
//! Scopes: resource units per app and tenant (sized S/M/L by the tenant's user count) and per app;
//! writes per app and tenant, per app and per tenant; invitations per tenant; all requests per app.
//! Resource-unit costs follow the documented table: `GET /users` (and delta) 2, `GET
//! groups/{id}/members` 3, `memberOf` 2, any other read 1, any write 1 RU plus 1 write; `$select`
//! −1, `$expand` +1, `$top` under 20 −1, never below 1.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use http::Method;

use super::config::{Limits, Rate};
use super::router::{GraphRequest, Route};

/// What one request costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Charge {
    pub resource_units: u32,
    pub write: bool,
    pub invitation: bool,
}

impl Charge {
    pub fn of(route: &Route, req: &GraphRequest) -> Charge {
        let write = Route::is_write(&req.method);
        let base: i64 = match (route, &req.method) {
            (Route::Users | Route::UsersDelta, &Method::GET) => 2,
            (Route::GroupMembers(_), &Method::GET) => 3,
            (Route::UserMemberOf(_), &Method::GET) => 2,
            _ => 1,
        };
        let mut ru = base;
        if req.param("select").is_some() {
            ru -= 1;
        }
        if req.param("expand").is_some() {
            ru += 1;
        }
        if req.param("top").and_then(|t| t.trim().parse::<i64>().ok()).is_some_and(|t| t < 20) {
            ru -= 1;
        }
        Charge { resource_units: ru.max(1) as u32, write, invitation: *route == Route::Invitations && write }
    }
}

/// The answer for one request.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Let through; these headers go on the response.
    Allowed { headers: Vec<(String, String)> },
    /// 429: wait this many seconds; these headers go on the response (besides `Retry-After`).
    Throttled { retry_after: f64, headers: Vec<(String, String)> },
}

struct Bucket {
    tokens: f64,
    capacity: f64,
    last: Instant,
}

impl Bucket {
    fn refill(&mut self, rate: Rate, now: Instant) {
        let per_sec = rate.limit / rate.window.as_secs_f64().max(0.001);
        self.capacity = rate.limit;
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * per_sec).min(self.capacity);
        self.last = now;
    }
}

struct Check {
    key: String,
    rate: Rate,
    cost: f64,
    scope: Option<String>,
    information: Option<&'static str>,
}

pub struct Throttle {
    limits: Limits,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Throttle {
    pub fn new(limits: Limits) -> Self {
        Self { limits, buckets: Mutex::new(HashMap::new()) }
    }

    /// The resource-unit limit of an app in a tenant with `users` users.
    pub fn ru_rate(&self, users: usize) -> Rate {
        let l = &self.limits;
        if users < l.medium_tenant_users {
            l.ru_small
        } else if users <= l.large_tenant_users {
            l.ru_medium
        } else {
            l.ru_large
        }
    }

    /// Charges `charge` to the app `app` in `tenant` (which has `users` users), or says how long to wait.
    pub fn check(&self, app: &str, tenant: &str, users: usize, charge: Charge) -> Verdict {
        let ru_header = ("x-ms-resource-unit".to_string(), charge.resource_units.to_string());
        if !self.limits.enabled {
            return Verdict::Allowed { headers: vec![ru_header] };
        }
        let l = &self.limits;
        let ru = f64::from(charge.resource_units);
        let scope = |s: &str| format!("{s}/{app}/{tenant}");
        let mut checks = vec![
            Check {
                key: format!("ru-app-tenant/{app}/{tenant}"),
                rate: self.ru_rate(users),
                cost: ru,
                scope: Some(scope("Tenant_Application/ReadWrite")),
                information: Some("ResourceUnitLimitExceeded"),
            },
            Check {
                key: format!("ru-app/{app}"),
                rate: l.ru_app,
                cost: ru,
                scope: Some(scope("Application/ReadWrite")),
                information: Some("ResourceUnitLimitExceeded"),
            },
            Check { key: format!("global/{app}"), rate: l.global_app, cost: 1.0, scope: None, information: None },
        ];
        if charge.write {
            checks.push(Check {
                key: format!("writes-app-tenant/{app}/{tenant}"),
                rate: l.writes_app_tenant,
                cost: 1.0,
                scope: Some(scope("Tenant_Application/Write")),
                information: Some("WriteLimitExceeded"),
            });
            checks.push(Check {
                key: format!("writes-app/{app}"),
                rate: l.writes_app,
                cost: 1.0,
                scope: Some(scope("Application/Write")),
                information: Some("WriteLimitExceeded"),
            });
            checks.push(Check {
                key: format!("writes-tenant/{tenant}"),
                rate: l.writes_tenant,
                cost: 1.0,
                scope: Some(scope("Tenant/Write")),
                information: Some("WriteLimitExceeded"),
            });
        }
        if charge.invitation {
            checks.push(Check {
                key: format!("invitations/{tenant}"),
                rate: l.invitations_tenant,
                cost: 1.0,
                scope: None,
                information: None,
            });
        }

        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let mut worst: Option<(f64, &Check)> = None;
        for check in &checks {
            let bucket = buckets.entry(check.key.clone()).or_insert_with(|| Bucket {
                tokens: check.rate.limit,
                capacity: check.rate.limit,
                last: now,
            });
            bucket.refill(check.rate, now);
            if bucket.tokens + 1e-9 < check.cost {
                let per_sec = check.rate.limit / check.rate.window.as_secs_f64().max(0.001);
                let wait = (check.cost - bucket.tokens) / per_sec;
                if worst.is_none_or(|(w, _)| wait > w) {
                    worst = Some((wait, check));
                }
            }
        }
        let main = &checks[0];
        if let Some((wait, check)) = worst {
            let mut headers = vec![ru_header];
            if let Some(s) = &check.scope {
                headers.push(("x-ms-throttle-scope".into(), s.clone()));
            }
            if let Some(i) = check.information {
                headers.push(("x-ms-throttle-information".into(), i.into()));
            }
            if check.key == main.key {
                let b = &buckets[&main.key];
                let pct = ((b.capacity - b.tokens + main.cost) / b.capacity).clamp(0.8, 1.8);
                headers.push(("x-ms-throttle-limit-percentage".into(), format!("{pct:.1}")));
            }
            return Verdict::Throttled { retry_after: wait, headers };
        }
        for check in &checks {
            if let Some(b) = buckets.get_mut(&check.key) {
                b.tokens -= check.cost;
            }
        }
        let mut headers = vec![ru_header];
        let b = &buckets[&main.key];
        let used = (b.capacity - b.tokens) / b.capacity;
        if used >= 0.8 {
            headers.push(("x-ms-throttle-limit-percentage".into(), format!("{:.1}", used.clamp(0.8, 1.8))));
            if let Some(s) = &main.scope {
                headers.push(("x-ms-throttle-scope".into(), s.clone()));
            }
        }
        Verdict::Allowed { headers }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn write() -> Charge {
        Charge { resource_units: 1, write: true, invitation: true }
    }

    #[test]
    fn invitations_past_the_limit_wait_for_a_refill() {
        let limits = Limits { invitations_tenant: Rate::new(3.0, Duration::from_secs(6)), ..Limits::default() };
        let t = Throttle::new(limits);
        for _ in 0..3 {
            assert!(matches!(t.check("app", "t1", 1, write()), Verdict::Allowed { .. }));
        }
        let Verdict::Throttled { retry_after, .. } = t.check("app", "t1", 1, write()) else { panic!("expected 429") };
        assert!((1.9..=2.01).contains(&retry_after), "one invitation refills in 2 s, got {retry_after}");
        // another tenant has its own budget
        assert!(matches!(t.check("app", "t2", 1, write()), Verdict::Allowed { .. }));
    }

    #[test]
    fn resource_units_depend_on_tenant_size_and_report_usage() {
        let limits = Limits {
            ru_small: Rate::per_secs(10.0, 10),
            ru_medium: Rate::per_secs(20.0, 10),
            medium_tenant_users: 5,
            ..Limits::default()
        };
        let t = Throttle::new(limits);
        let read = Charge { resource_units: 2, write: false, invitation: false };
        for _ in 0..4 {
            assert!(matches!(t.check("a", "small", 1, read), Verdict::Allowed { .. }));
        }
        let Verdict::Allowed { headers } = t.check("a", "small", 1, read) else { panic!() };
        assert!(headers.iter().any(|(k, v)| k == "x-ms-throttle-limit-percentage" && v == "1.0"));
        let Verdict::Throttled { headers, .. } = t.check("a", "small", 1, read) else { panic!() };
        assert!(headers.iter().any(|(k, v)| k == "x-ms-throttle-information" && v == "ResourceUnitLimitExceeded"));
        assert!(headers.iter().any(|(k, v)| k == "x-ms-throttle-scope" && v == "Tenant_Application/ReadWrite/a/small"));
        for _ in 0..10 {
            assert!(matches!(t.check("a", "medium", 10, read), Verdict::Allowed { .. }));
        }
    }
}
