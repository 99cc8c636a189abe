//! Changes a server announces for a user (resources updated, lists changed) reach that user's
//! sessions on every node: each (server, principal) event channel of a node is attached to the
//! node's [`ClusterEvents`], which publishes what is announced on it to one Redis pub/sub
//! channel (`gumcp:events`), and every node keeps one subscription to it and hands what other
//! nodes published to its own channel of the same (server, principal), if it has one.
//!
//! On the wire a channel is named by a digest of the server and the principal (never the user
//! id or a key digest as such). Publishing goes through a bounded queue and a single task; an
//! event that finds the queue full, or Redis gone, is dropped — list changes and resource
//! updates tell a client to read again, so a lost one costs a stale view until the next.
//! Task status changes stay on their node (a task lives where it was created).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dashmap::DashMap;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::Cluster;
use crate::actors::server_core::ServerKey;
use crate::servers::{EventRelay, ServerEvent, ServerEvents, WeakServerEvents};

/// The Redis pub/sub channel every node publishes to and listens on.
const CHANNEL: &str = "gumcp:events";
/// Events waiting to be published; more are dropped.
const QUEUE: usize = 1024;
/// How long the subscription waits before connecting again after losing Redis.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);

/// A (server, principal) channel's name on the wire.
type ChannelId = [u8; 32];

fn channel_id(key: &ServerKey) -> ChannelId {
    let mut hash = Sha256::new();
    hash.update(key.server.as_bytes());
    hash.update([0]);
    hash.update(key.principal.seal_subject().as_bytes());
    hash.finalize().into()
}

/// One event as published.
#[derive(Serialize, Deserialize)]
struct Published {
    /// The node that published it (which ignores its own).
    node: String,
    channel: String,
    kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    uri: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Kind {
    ToolsListChanged,
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated,
}

impl Published {
    fn event(self) -> Option<ServerEvent> {
        Some(match self.kind {
            Kind::ToolsListChanged => ServerEvent::ToolsListChanged,
            Kind::PromptsListChanged => ServerEvent::PromptsListChanged,
            Kind::ResourcesListChanged => ServerEvent::ResourcesListChanged,
            Kind::ResourceUpdated => ServerEvent::ResourceUpdated { uri: self.uri? },
        })
    }
}

/// This node's side of the cluster's event relay.
pub struct ClusterEvents {
    node: String,
    queue: mpsc::Sender<Vec<u8>>,
    /// Waiting for the publishing task, which is started with the subscription.
    outgoing: Mutex<Option<mpsc::Receiver<Vec<u8>>>>,
    /// This node's channels by wire name; a channel that is gone is pruned as the index grows.
    local: DashMap<ChannelId, WeakServerEvents>,
    /// Index size that triggers the next prune.
    prune_at: std::sync::atomic::AtomicUsize,
}

/// One attached channel: publishes what is announced on it.
#[derive(Debug)]
struct Relay {
    node: String,
    channel: String,
    queue: mpsc::Sender<Vec<u8>>,
}

impl EventRelay for Relay {
    fn publish(&self, event: &ServerEvent) {
        let (kind, uri) = match event {
            ServerEvent::ToolsListChanged => (Kind::ToolsListChanged, None),
            ServerEvent::PromptsListChanged => (Kind::PromptsListChanged, None),
            ServerEvent::ResourcesListChanged => (Kind::ResourcesListChanged, None),
            ServerEvent::ResourceUpdated { uri } => (Kind::ResourceUpdated, Some(uri.clone())),
            ServerEvent::TaskStatus(_) => return,
        };
        let published = Published {
            node: self.node.clone(),
            channel: self.channel.clone(),
            kind,
            uri,
        };
        if let Ok(bytes) = serde_json::to_vec(&published) {
            let _ = self.queue.try_send(bytes);
        }
    }
}

impl ClusterEvents {
    pub fn new(node: &str) -> ClusterEvents {
        let (queue, outgoing) = mpsc::channel(QUEUE);
        ClusterEvents {
            node: node.to_owned(),
            queue,
            outgoing: Mutex::new(Some(outgoing)),
            local: DashMap::new(),
            prune_at: std::sync::atomic::AtomicUsize::new(1024),
        }
    }

    /// Relays `events`, the channel of `key` on this node, to and from the other nodes.
    pub fn attach(&self, key: &ServerKey, events: &ServerEvents) {
        let id = channel_id(key);
        events.relay_to(Arc::new(Relay {
            node: self.node.clone(),
            channel: hex::encode(id),
            queue: self.queue.clone(),
        }));
        self.local.insert(id, events.downgrade());
        let prune_at = self.prune_at.load(std::sync::atomic::Ordering::Relaxed);
        if self.local.len() >= prune_at {
            self.local.retain(|_, weak| weak.upgrade().is_some());
            self.prune_at.store(
                (self.local.len() * 2).max(1024),
                std::sync::atomic::Ordering::Relaxed,
            );
        }
    }

    /// Hands an event another node published to this node's channel, if it has it.
    fn receive(&self, payload: &[u8]) {
        let Ok(published) = serde_json::from_slice::<Published>(payload) else {
            return;
        };
        if published.node == self.node {
            return;
        }
        let Some(id) = hex::decode(&published.channel)
            .ok()
            .and_then(|bytes| ChannelId::try_from(bytes).ok())
        else {
            return;
        };
        let Some(events) = self.local.get(&id).and_then(|weak| weak.upgrade()) else {
            return;
        };
        if let Some(event) = published.event() {
            events.deliver(event);
        }
    }
}

impl Cluster {
    /// Starts publishing this node's events and listening to the others' (once; the tasks
    /// run for the life of the process).
    pub fn relay_events(self: &Arc<Self>) {
        let Some(mut outgoing) = self.events.outgoing.lock().ok().and_then(|mut o| o.take()) else {
            return;
        };
        let publisher = self.clone();
        tokio::spawn(async move {
            while let Some(bytes) = outgoing.recv().await {
                if let Ok(mut redis) = publisher.redis().await {
                    let mut publish = redis::cmd("PUBLISH");
                    publish.arg(CHANNEL).arg(bytes);
                    let sent = publish.query_async::<i64>(&mut redis);
                    let _ = tokio::time::timeout(publisher.timeout(), sent).await;
                }
            }
        });
        let listener = self.clone();
        tokio::spawn(async move {
            loop {
                let opened = tokio::time::timeout(listener.timeout(), async {
                    let mut pubsub = listener.client.get_async_pubsub().await?;
                    pubsub.subscribe(CHANNEL).await?;
                    redis::RedisResult::Ok(pubsub)
                })
                .await;
                if let Ok(Ok(pubsub)) = opened {
                    let mut messages = pubsub.into_on_message();
                    while let Some(message) = messages.next().await {
                        listener.events.receive(message.get_payload_bytes());
                    }
                }
                tokio::time::sleep(RESUBSCRIBE_AFTER).await;
            }
        });
    }

    /// This node's side of the event relay.
    pub fn events(&self) -> &ClusterEvents {
        &self.events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::principal::Principal;

    fn key(user: &str) -> ServerKey {
        ServerKey {
            server: Arc::from("s"),
            principal: Principal::user(user),
        }
    }

    /// What one node publishes reaches the same (server, principal) channel on another node,
    /// and no other channel.
    #[test]
    fn an_event_reaches_the_same_users_channel_only() {
        let one = ClusterEvents::new("one");
        let two = ClusterEvents::new("two");
        let (alice_one, alice_two, bob_two) = (
            ServerEvents::new(4),
            ServerEvents::new(4),
            ServerEvents::new(4),
        );
        one.attach(&key("alice"), &alice_one);
        two.attach(&key("alice"), &alice_two);
        two.attach(&key("bob"), &bob_two);
        let mut alice_hears = alice_two.subscribe();
        let mut bob_hears = bob_two.subscribe();
        alice_one.send(ServerEvent::ResourceUpdated {
            uri: "x://1".into(),
        });
        let mut queued = one.outgoing.lock().unwrap().take().unwrap();
        let wire = queued.try_recv().unwrap();
        assert!(!String::from_utf8_lossy(&wire).contains("alice"));
        one.receive(&wire);
        two.receive(&wire);
        assert_eq!(
            alice_hears.try_recv().unwrap(),
            ServerEvent::ResourceUpdated {
                uri: "x://1".into()
            }
        );
        assert!(bob_hears.try_recv().is_err());
        drop(alice_two);
        two.receive(&wire);
    }
}
