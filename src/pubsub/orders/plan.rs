//! An order's plan: the steps, their interval, where it fails and when it expires, checked
//! from what `POST /api/orders` asked for before anything starts.

use std::time::Duration;

use super::{DEFAULT_STEPS, MAX_INTERVAL_MS, MAX_STEPS, NewOrder, OrderError, SEED_INTERVAL_MS};

#[derive(Debug, Clone, Copy)]
pub(super) struct Plan {
    pub(super) steps: u32,
    pub(super) interval: Duration,
    pub(super) fail_at: Option<u32>,
    pub(super) expire_after: Option<Duration>,
}

impl Plan {
    pub(super) fn from_request(order: &NewOrder) -> Result<Self, OrderError> {
        let steps = order.steps.unwrap_or(DEFAULT_STEPS);
        if !(1..=MAX_STEPS).contains(&steps) {
            return Err(OrderError::Invalid(format!(
                "steps must be from 1 to {MAX_STEPS}"
            )));
        }
        let interval_ms = order.interval_ms.unwrap_or(SEED_INTERVAL_MS);
        if !(1..=MAX_INTERVAL_MS).contains(&interval_ms) {
            return Err(OrderError::Invalid(format!(
                "interval_ms must be from 1 to {MAX_INTERVAL_MS}"
            )));
        }
        if let Some(fail_at) = order.fail_at
            && !(1..=steps).contains(&fail_at)
        {
            return Err(OrderError::Invalid(format!(
                "fail_at must be a step from 1 to {steps}"
            )));
        }
        Ok(Self {
            steps,
            interval: Duration::from_millis(interval_ms),
            fail_at: order.fail_at,
            expire_after: order.expire_after_ms.map(Duration::from_millis),
        })
    }
}
