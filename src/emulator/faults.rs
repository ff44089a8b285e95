//! Injected latency and failures, from one seeded random sequence. Every request draws the same
//! number of values whatever it is, so a given seed and sequence of requests always gives the same
//! faults.

use std::sync::Mutex;
use std::time::Duration;

use http::StatusCode;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::config::{FaultConfig, RetryAfterFormat};
use super::errors::GraphError;

/// What happens to one request before (and after) it is handled.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decision {
    pub latency: Duration,
    /// Close the connection without an answer, before anything is done.
    pub drop: bool,
    /// Answer this 5xx before anything is done.
    pub fault: Option<StatusCode>,
    /// For a write: carry it out, then lose the answer.
    pub ambiguous: Option<Ambiguous>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ambiguous {
    /// Answer 504 Gateway Timeout.
    GatewayTimeout,
    /// Close the connection.
    Drop,
}

pub struct Faults {
    config: FaultConfig,
    rng: Mutex<StdRng>,
}

impl Faults {
    pub fn new(config: FaultConfig) -> Self {
        let seed = config.seed.unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
        });
        Self { config, rng: Mutex::new(StdRng::seed_from_u64(seed)) }
    }

    pub fn config(&self) -> &FaultConfig {
        &self.config
    }

    /// Draws the decision for the next request. `droppable`: whether its connection may be closed (not
    /// for an item of `$batch`, whose envelope still answers).
    pub fn decide(&self, droppable: bool) -> Decision {
        let c = &self.config;
        let (jitter, drop, fault, which, ambiguous, how) = {
            let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
            (
                rng.random::<f64>(),
                rng.random::<f64>(),
                rng.random::<f64>(),
                rng.random_range(0..3u8),
                rng.random::<f64>(),
                rng.random::<bool>(),
            )
        };
        let latency = c.latency + c.latency_jitter.mul_f64(jitter);
        let drop = droppable && drop < c.drop_rate;
        let status = match which {
            0 => StatusCode::INTERNAL_SERVER_ERROR,
            1 => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::GATEWAY_TIMEOUT,
        };
        let fault = (!drop && fault < c.fault_rate).then_some(status);
        let ambiguous =
            (ambiguous < c.ambiguous_rate).then_some(if how && droppable { Ambiguous::Drop } else { Ambiguous::GatewayTimeout });
        Decision { latency, drop, fault, ambiguous }
    }

    /// Whether the next `Retry-After` is written with decimals (`Mixed`: a coin toss).
    pub fn fractional(&self, format: RetryAfterFormat) -> bool {
        match format {
            RetryAfterFormat::Integer => false,
            RetryAfterFormat::Fractional => true,
            RetryAfterFormat::Mixed => self.rng.lock().unwrap_or_else(|p| p.into_inner()).random::<bool>(),
        }
    }
}

/// The error of an injected 5xx.
pub fn injected(status: StatusCode, retry_after: f64) -> GraphError {
    match status {
        StatusCode::SERVICE_UNAVAILABLE => {
            GraphError::new(status, "serviceNotAvailable", "The service is temporarily unavailable. (emulator: injected fault)")
                .with_header("Retry-After", format_seconds(retry_after, retry_after.fract() != 0.0))
        }
        StatusCode::GATEWAY_TIMEOUT => GraphError::new(
            status,
            "gatewayTimeout",
            "The gateway did not receive a response in time. (emulator: injected fault)",
        ),
        _ => GraphError::new(status, "generalException", "General exception while processing. (emulator: injected fault)"),
    }
}

/// `Retry-After` seconds: rounded up to a whole number, or with up to three decimals.
pub fn format_seconds(secs: f64, fractional: bool) -> String {
    let secs = secs.max(0.001);
    if fractional {
        let s = format!("{:.3}", (secs * 1000.0).ceil() / 1000.0);
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{}", secs.ceil().max(1.0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_faults() {
        let config = FaultConfig { fault_rate: 0.3, drop_rate: 0.1, ambiguous_rate: 0.2, seed: Some(7), ..Default::default() };
        let a: Vec<Decision> = (0..200)
            .map({
                let f = Faults::new(config.clone());
                move |_| f.decide(true)
            })
            .collect();
        let f = Faults::new(config);
        let b: Vec<Decision> = (0..200).map(|_| f.decide(true)).collect();
        assert_eq!(a, b);
        let faults = a.iter().filter(|d| d.fault.is_some()).count();
        assert!((30..=90).contains(&faults), "about 30% of 200, got {faults}");
        assert!(a.iter().any(|d| d.drop));
    }

    #[test]
    fn retry_after_formats() {
        assert_eq!(format_seconds(1.6667, true), "1.667");
        assert_eq!(format_seconds(1.6667, false), "2");
        assert_eq!(format_seconds(0.2, false), "1");
        assert_eq!(format_seconds(2.0, true), "2");
    }
}
