//! The order worker's `--max-orders` slot, with paused time: given back when the order
//! finishes, and when the shutdown token stops the worker mid-order.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::*;
use crate::pubsub::fanout::{Fanout, Limits};

/// Orders with room for one running at a time.
fn one_at_a_time(shutdown: &CancellationToken) -> Orders {
    let fanout = Fanout::new(Limits {
        replay: 16,
        queue: 16,
    });
    Orders::new(fanout, 1, Duration::from_secs(60), shutdown.clone())
}

fn order(steps: u32, interval_ms: u64) -> NewOrder {
    NewOrder {
        steps: Some(steps),
        interval_ms: Some(interval_ms),
        ..NewOrder::default()
    }
}

async fn refused_as_busy(orders: &Orders) -> bool {
    orders.create(order(1, 10)).await.err() == Some(OrderError::Busy { max_running: 1 })
}

#[tokio::test(start_paused = true)]
async fn a_finished_order_gives_its_slot_back() {
    let orders = one_at_a_time(&CancellationToken::new());
    let id = orders
        .create(order(3, 1000))
        .await
        .expect("created")
        .order_id;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(orders.running(), 1, "the third step is still to come");
    assert!(refused_as_busy(&orders).await);

    tokio::time::sleep(Duration::from_millis(501)).await;
    assert_eq!(
        orders.detail(&id).expect("kept for its linger").status,
        "done"
    );
    assert_eq!(orders.running(), 0);
    assert!(
        orders.create(order(1, 10)).await.is_ok(),
        "the slot is free again"
    );
}

#[tokio::test(start_paused = true)]
async fn cancelling_the_shutdown_token_stops_the_worker_and_frees_its_slot() {
    let shutdown = CancellationToken::new();
    let orders = one_at_a_time(&shutdown);
    let id = orders
        .create(order(100, 60_000))
        .await
        .expect("created")
        .order_id;
    tokio::time::sleep(Duration::from_secs(90)).await;
    assert_eq!(orders.running(), 1, "mid-order");
    assert!(refused_as_busy(&orders).await);

    shutdown.cancel();
    // Lets the worker see the cancellation; the paused clock then moves only this far.
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(orders.running(), 0);
    let detail = orders.detail(&id).expect("still known");
    assert_eq!(
        (detail.status, detail.progress),
        ("processing", 1),
        "stopped where it was"
    );
    assert!(
        orders.create(order(1, 10)).await.is_ok(),
        "the slot is free again"
    );
}
