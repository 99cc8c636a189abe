//! What all hosted children share: their settings and the count of live children, in all and
//! per user, so no user (and no number of users) can start processes without bound.

use std::collections::HashMap;

use crate::auth::principal::Principal;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus::IntGauge;

use crate::config::HostedSettings;
use crate::metrics::Metrics;
use crate::protocol::error::McpError;

/// Shared by every hosted server instance of a runtime.
#[derive(Clone)]
pub struct HostedRuntime {
    pub settings: Arc<HostedSettings>,
    /// `runtime.max_restarts_per_minute`: child starts after a crash allowed within a minute.
    pub max_restarts_per_minute: u32,
    pub slots: Arc<ChildSlots>,
    /// Child restarts count in `gumcp_server_restarts_total`, live children in
    /// `gumcp_live_actors{kind="hosted_child"}`.
    pub metrics: Arc<Metrics>,
}

impl HostedRuntime {
    pub fn new(
        settings: HostedSettings,
        max_restarts_per_minute: u32,
        metrics: Arc<Metrics>,
    ) -> Self {
        let live = metrics.live_actors.with_label_values(&["hosted_child"]);
        HostedRuntime {
            slots: Arc::new(ChildSlots::new(
                settings.max_children,
                settings.max_children_per_user,
                live,
            )),
            settings: Arc::new(settings),
            max_restarts_per_minute,
            metrics,
        }
    }
}

/// Live children, in all and per caller (`Principal`: a user, and the key where only a key
/// vouches, so a key merely claiming a user cannot use up that user's children); a caller's
/// entry exists only while they have one.
pub struct ChildSlots {
    max_total: usize,
    max_per_user: usize,
    live: Mutex<Live>,
    live_gauge: IntGauge,
}

#[derive(Default)]
struct Live {
    total: usize,
    per_user: HashMap<Principal, usize>,
}

/// A place for one live child; given back when dropped (the child ended).
pub struct ChildSlot {
    slots: Arc<ChildSlots>,
    user: Principal,
}

impl ChildSlots {
    pub fn new(max_total: usize, max_per_user: usize, live_gauge: IntGauge) -> Self {
        ChildSlots {
            max_total,
            max_per_user,
            live: Mutex::new(Live::default()),
            live_gauge,
        }
    }

    /// A slot for a new child of `user`, or the refusal saying which bound was reached.
    pub fn take(self: &Arc<Self>, user: &Principal) -> Result<ChildSlot, McpError> {
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        if live.total >= self.max_total {
            return Err(McpError::busy(format!(
                "too many hosted server processes are running ({}, hosted.max_children); \
                 try again later",
                self.max_total
            )));
        }
        let mine = live.per_user.get(user).copied().unwrap_or(0);
        if mine >= self.max_per_user {
            return Err(McpError::busy(format!(
                "you already have {mine} hosted server processes running \
                 (hosted.max_children_per_user); they stop after being idle"
            )));
        }
        live.total += 1;
        *live.per_user.entry(user.clone()).or_insert(0) += 1;
        self.live_gauge.inc();
        Ok(ChildSlot {
            slots: self.clone(),
            user: user.clone(),
        })
    }
}

impl Drop for ChildSlot {
    fn drop(&mut self) {
        let mut live = self
            .slots
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        live.total = live.total.saturating_sub(1);
        self.slots.live_gauge.dec();
        if let Some(count) = live.per_user.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                live.per_user.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_in_all_and_per_user_and_given_back() {
        let gauge = IntGauge::new("live", "live children").unwrap();
        let slots = Arc::new(ChildSlots::new(3, 2, gauge.clone()));
        let (alice, bob) = (Principal::user("alice"), Principal::user("bob"));
        let first = slots.take(&alice).unwrap();
        let _second = slots.take(&alice).unwrap();
        let refused = slots.take(&alice).err().unwrap();
        assert!(
            refused.message.contains("max_children_per_user"),
            "{refused:?}"
        );
        let _third = slots.take(&bob).unwrap();
        let refused = slots.take(&bob).err().unwrap();
        assert!(
            refused.message.contains("hosted.max_children"),
            "{refused:?}"
        );
        assert_eq!(gauge.get(), 3);
        drop(first);
        assert_eq!(gauge.get(), 2);
        assert!(slots.take(&bob).is_ok());
    }
}
