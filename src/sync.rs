//! The one way sselab takes a `std::sync::Mutex`: a panic elsewhere that poisoned it must not
//! take the whole server down with it, so the poison is ignored and the data used as it is.
//! Every lock here guards plain counters or maps that stay consistent between statements.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Lock `mutex`, ignoring poison.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
