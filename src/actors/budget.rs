//! Each user's budget of calls running at once (tools, resources, prompts, completions) over
//! all their sessions and servers. Server instances are per user, so calls of different users
//! never wait for each other's instance; what they share is the worker threads and the
//! upstream connection pool, and this budget is each user's fair share of them: a user past it
//! is refused until some of their calls finish, and nobody else notices. Shares are per
//! principal: a key that merely claims a user (remote mode) cannot use up that user's share.
//! In a cluster each node admits its share of the limit ([`Cluster::share_of`]), so a user's
//! calls spread over the nodes stay within about the limit in all.

use std::sync::Arc;

use dashmap::DashMap;
use prometheus::IntGauge;

use crate::auth::principal::Principal;
use crate::cluster::Cluster;
use crate::metrics::{Metrics, Rejection};
use crate::protocol::error::McpError;

/// The running-call counts of every user with calls running (users without any have no
/// entry, so the map does not grow with every user ever seen).
pub struct InFlightBudget {
    per_user: DashMap<Principal, usize>,
    limit: usize,
    metrics: Arc<Metrics>,
    cluster: Option<Arc<Cluster>>,
}

/// One running call; dropping it gives the place back.
pub struct Permit {
    budget: Arc<InFlightBudget>,
    user: Principal,
    /// The server's `gumcp_in_flight_requests` gauge.
    gauge: IntGauge,
}

impl InFlightBudget {
    pub fn new(limit: usize, metrics: Arc<Metrics>) -> InFlightBudget {
        InFlightBudget {
            per_user: DashMap::new(),
            limit,
            metrics,
            cluster: None,
        }
    }

    /// The same budget as a node of `cluster`: each user gets this node's share of the limit.
    pub fn in_cluster(self, cluster: Option<Arc<Cluster>>) -> InFlightBudget {
        InFlightBudget { cluster, ..self }
    }

    /// A place for one more call of `user` on the server whose in-flight gauge is `gauge`, or
    /// the error saying the user is at their limit.
    pub fn admit(self: &Arc<Self>, user: &Principal, gauge: &IntGauge) -> Result<Permit, McpError> {
        let limit = match &self.cluster {
            Some(cluster) => cluster.share_of(self.limit),
            None => self.limit,
        };
        {
            let mut running = self.per_user.entry(user.clone()).or_insert(0);
            if *running >= limit {
                drop(running);
                self.metrics.rejected(Rejection::InFlightPerUser);
                return Err(McpError::busy(format!(
                    "too many calls running for this user ({limit} at once on this node, \
                     runtime.max_in_flight_per_user); retry when some have finished"
                )));
            }
            *running += 1;
        }
        gauge.inc();
        Ok(Permit {
            budget: self.clone(),
            user: user.clone(),
            gauge: gauge.clone(),
        })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let budget = &self.budget;
        self.gauge.dec();
        let emptied = match budget.per_user.get_mut(&self.user) {
            Some(mut running) => {
                *running = running.saturating_sub(1);
                *running == 0
            }
            None => false,
        };
        if emptied {
            budget
                .per_user
                .remove_if(&self.user, |_, running| *running == 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_at_the_limit_is_refused_and_others_are_not() {
        let metrics = Arc::new(Metrics::new());
        let budget = Arc::new(InFlightBudget::new(2, metrics.clone()));
        let (heavy, light) = (Principal::user("heavy"), Principal::user("light"));
        let server = metrics.in_flight.with_label_values(&["s"]);
        let first = budget.admit(&heavy, &server).unwrap();
        let _second = budget.admit(&heavy, &server).unwrap();
        let refused = budget.admit(&heavy, &server).err().unwrap();
        assert_eq!(refused.code, crate::protocol::error::codes::SERVER_BUSY);
        assert!(refused.message.contains("max_in_flight_per_user"));
        assert!(budget.admit(&light, &server).is_ok());
        drop(first);
        assert!(budget.admit(&heavy, &server).is_ok());
        let counted = metrics
            .rejections
            .with_label_values(&["in_flight_per_user"]);
        assert_eq!(counted.get(), 1);
    }

    #[test]
    fn users_without_running_calls_leave_no_entry() {
        let metrics = Arc::new(Metrics::new());
        let budget = Arc::new(InFlightBudget::new(4, metrics.clone()));
        let server = metrics.in_flight.with_label_values(&["s"]);
        for n in 0..100 {
            let user = Principal::user(format!("user{n}"));
            drop(budget.admit(&user, &server).unwrap());
        }
        assert!(budget.per_user.is_empty());
        assert_eq!(metrics.in_flight.with_label_values(&["s"]).get(), 0);
    }
}
