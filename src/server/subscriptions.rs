//! Staying in step with FHIR servers (`serve --subscribe-to URL`): at start-up the service
//! creates rest-hook Subscriptions on each server, pointing at its own `/v1/notifications` with a
//! secret header it generated; each notification queues an incremental sync of the patient it
//! names; a watchdog re-creates a subscription the server reports off, in error or gone; on
//! shutdown the subscriptions are deleted.
//!
//! Replicas sharing a PostgreSQL store agree on each server's secret (kept in the store), so
//! whichever replica a notification reaches accepts it and syncs what it names, once; one
//! replica leads (`Store::try_lead`) and alone creates, watches and deletes the subscriptions.
//! When the leader dies, another takes the role within `check_every` and subscribes anew.
//!
//! Notifications only say who to sync. Many arriving together (a bundle of 500 results) make
//! one sync of that patient, not 500: a patient queued while its sync runs is synced once more
//! after it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify;

use crate::fhir::redact::redact;
use crate::ingest::Workspace;
use crate::store::Leadership;
use crate::sync::notification::{self, Named};
use crate::sync::subscription::{self, Criteria, Health};
use crate::sync::{self, ClientError, FhirClient, Quiet, ServerAuth, SyncRequest};

/// The role (`Store::try_lead`) of the replica that holds the subscriptions.
const LEAD_ROLE: &str = "ehrqa subscriptions";

/// One server to stay in step with, as configured.
#[derive(Debug, Clone)]
pub struct Target {
    pub base: String,
    pub auth: ServerAuth,
    pub criteria: Vec<Criteria>,
}

/// What happened on one server's subscriptions (`GET /v1/subscriptions`): counts, no patients.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Stats {
    /// Notifications accepted (with the secret).
    pub notifications: u64,
    /// Patient syncs they caused, and the resources those fetched.
    pub syncs: u64,
    pub resources: u64,
    /// Subscriptions made again after the server reported them off, in error or gone.
    pub recreated: u64,
    pub last_error: Option<String>,
}

/// One server's subscriptions as `GET /v1/subscriptions` lists them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ServerView {
    pub server: String,
    /// `Subscription/{id}` per criteria (a resource type or a topic URL); `null` while none is held.
    pub subscriptions: BTreeMap<String, Option<String>>,
    #[serde(flatten)]
    pub stats: Stats,
}

struct Subscribed {
    target: Target,
    client: FhirClient,
    /// The secret header's value: random per process until `start` reads the one the
    /// store keeps for this server.
    secret: Mutex<String>,
    /// The server's Subscription id for each criteria, in `target.criteria` order.
    ids: Mutex<Vec<Option<String>>>,
    stats: Mutex<Stats>,
}

pub struct Subscriptions {
    servers: Vec<Subscribed>,
    endpoint: String,
    check_every: Duration,
    pending: Mutex<BTreeMap<usize, BTreeSet<Named>>>,
    wake: Notify,
    /// Held while this process leads the subscriptions among replicas.
    leadership: Mutex<Option<Leadership>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error("subscribing on {server} ({criteria}): {error}")]
    Create { server: String, criteria: String, error: ClientError },
    #[error("{0}")]
    Setup(String),
}

impl Subscriptions {
    /// Each target gets a secret of its own, so a notification says which server it is from.
    pub fn new(
        targets: Vec<Target>,
        endpoint: String,
        check_every: Duration,
    ) -> Result<Self, SubscribeError> {
        let servers = targets
            .into_iter()
            .map(|target| {
                let client = FhirClient::new(&target.base, target.auth.clone(), Duration::from_secs(30))
                    .map_err(|e| SubscribeError::Setup(e.to_string()))?;
                let mut bytes = [0u8; 32];
                getrandom::fill(&mut bytes).map_err(|_| SubscribeError::Setup("no randomness".into()))?;
                let ids = Mutex::new(vec![None; target.criteria.len()]);
                let secret = Mutex::new(hex::encode(bytes));
                Ok(Subscribed { target, client, secret, ids, stats: Mutex::default() })
            })
            .collect::<Result<_, SubscribeError>>()?;
        Ok(Self {
            servers,
            endpoint,
            check_every,
            pending: Mutex::default(),
            wake: Notify::new(),
            leadership: Mutex::default(),
        })
    }

    /// Starts staying in step: syncs what notifications name (on every replica), and, if this
    /// process leads, subscribes now; a refusal then stops start-up. A replica that does not
    /// lead tries for the role every `check_every` and subscribes when it gets it.
    pub async fn start(self: Arc<Self>, ws: Arc<Workspace>) -> Result<(), SubscribeError> {
        let store_error = |e: crate::store::StoreError| SubscribeError::Setup(e.to_string());
        for s in &self.servers {
            let shared = ws.store.shared_secret(&format!("subscription {}", s.target.base)).await;
            *s.secret.lock().expect("secret lock") = shared.map_err(store_error)?;
        }
        tokio::spawn(self.clone().work(ws.clone()));
        if let Some(lead) = ws.store.try_lead(LEAD_ROLE).await.map_err(store_error)? {
            if let Err(e) = self.subscribe_all().await {
                self.unsubscribe_all().await;
                return Err(e);
            }
            *self.leadership.lock().expect("leadership lock") = Some(lead);
            tokio::spawn(async move {
                self.watch().await;
                self.await_lead(ws).await;
            });
            return Ok(());
        }
        tracing::info!("another replica leads the subscriptions; this one syncs what it is notified of");
        tokio::spawn(self.await_lead(ws));
        Ok(())
    }

    /// Whether this process still holds the lead (checked on its session; the lock is held
    /// out of the mutex while the check awaits).
    async fn still_leading(&self) -> bool {
        let taken = self.leadership.lock().expect("leadership lock").take();
        let Some(mut lead) = taken else { return false };
        if !lead.held().await {
            return false;
        }
        *self.leadership.lock().expect("leadership lock") = Some(lead);
        true
    }

    /// Tries for the lead every `check_every`; when it has it, subscribes and watches until
    /// it loses it, then tries again.
    async fn await_lead(self: Arc<Self>, ws: Arc<Workspace>) {
        loop {
            tokio::time::sleep(self.check_every).await;
            let lead = match ws.store.try_lead(LEAD_ROLE).await {
                Ok(Some(lead)) => lead,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!("trying for the subscriptions' lead: {}", redact(&e.to_string()));
                    continue;
                }
            };
            tracing::info!("this replica now leads the subscriptions");
            *self.leadership.lock().expect("leadership lock") = Some(lead);
            // What the subscribing fails to make, the watchdog makes again.
            if let Err(e) = self.subscribe_all().await {
                tracing::warn!("subscribing: {}", redact(&e.to_string()));
            }
            self.watch().await;
        }
    }

    /// Creates every subscription; the first refusal stops start-up (a misconfigured server is
    /// better found now than by silence later).
    pub async fn subscribe_all(&self) -> Result<(), SubscribeError> {
        for s in &self.servers {
            for (i, c) in s.target.criteria.iter().enumerate() {
                let id = self.create(s, c).await?;
                s.ids.lock().expect("ids lock")[i] = Some(id);
            }
            tracing::info!(server = %s.target.base, subscriptions = s.target.criteria.len(), "subscribed");
        }
        Ok(())
    }

    async fn create(&self, s: &Subscribed, c: &Criteria) -> Result<String, SubscribeError> {
        let secret = s.secret.lock().expect("secret lock").clone();
        let resource = subscription::resource(c, &self.endpoint, &secret);
        let err = |error| SubscribeError::Create {
            server: s.target.base.clone(),
            criteria: c.describe().to_owned(),
            error,
        };
        let created = s.client.create(&resource).await.map_err(err)?;
        created["id"].as_str().map(str::to_owned).ok_or_else(|| {
            err(ClientError::Garbage(s.target.base.clone(), "a Subscription without an id".into()))
        })
    }

    /// The server whose secret this is (compared in constant time).
    pub fn sender(&self, secret: &[u8]) -> Option<usize> {
        self.servers
            .iter()
            .position(|s| constant_time_eq(s.secret.lock().expect("secret lock").as_bytes(), secret))
    }

    /// Queues what a notification names for the worker.
    pub fn notified(&self, server: usize, named: Vec<Named>) {
        if let Some(s) = self.servers.get(server) {
            s.stats.lock().expect("stats lock").notifications += 1;
        }
        if named.is_empty() {
            return;
        }
        self.pending.lock().expect("pending lock").entry(server).or_default().extend(named);
        self.wake.notify_one();
    }

    pub fn view(&self) -> Vec<ServerView> {
        self.servers
            .iter()
            .map(|s| {
                let ids = s.ids.lock().expect("ids lock").clone();
                let subscriptions = s
                    .target
                    .criteria
                    .iter()
                    .zip(ids)
                    .map(|(c, id)| (c.describe().to_owned(), id.map(|i| format!("Subscription/{i}"))))
                    .collect();
                ServerView {
                    server: s.target.base.clone(),
                    subscriptions,
                    stats: s.stats.lock().expect("stats lock").clone(),
                }
            })
            .collect()
    }

    /// Syncs queued patients, one server's batch at a time, for as long as the service runs.
    pub async fn work(self: Arc<Self>, ws: Arc<Workspace>) {
        loop {
            self.wake.notified().await;
            let batch = std::mem::take(&mut *self.pending.lock().expect("pending lock"));
            for (server, named) in batch {
                self.sync(&ws, &self.servers[server], named).await;
            }
        }
    }

    async fn sync(&self, ws: &Workspace, s: &Subscribed, named: BTreeSet<Named>) {
        let mut patients = BTreeSet::new();
        for n in named {
            match n {
                Named::Patient(p) => {
                    patients.insert(p);
                }
                Named::Resource(t, id) => match s.client.get(&format!("{t}/{id}")).await {
                    Ok(r) => patients.extend(notification::patient_of(&r)),
                    Err(e) => self.failed(s, &e.to_string()),
                },
            }
        }
        if patients.is_empty() {
            return;
        }
        let mut req = SyncRequest::new(&s.target.base);
        req.patients = patients.into_iter().collect();
        req.auth = s.target.auth.clone();
        match sync::run(ws, &req, &Quiet).await {
            Ok(report) => {
                let mut st = s.stats.lock().expect("stats lock");
                st.syncs += report.patients.len() as u64;
                st.resources += report.resources as u64;
                if let Some(e) = report.patients.iter().find_map(|p| p.error.as_deref()) {
                    st.last_error = Some(e.to_owned());
                }
                tracing::info!(
                    patients = report.patients.len(),
                    resources = report.resources,
                    "notified sync done"
                );
            }
            Err(e) => self.failed(s, &e.to_string()),
        }
    }

    fn failed(&self, s: &Subscribed, error: &str) {
        tracing::warn!(server = %s.target.base, "notified sync failed: {}", redact(error));
        s.stats.lock().expect("stats lock").last_error = Some(error.to_owned());
    }

    /// Every `check_every`, reads each subscription back and makes it again when the server has
    /// turned it off, put it in error, or lost it.
    /// Returns when this process has lost the lead (its database session went, as when
    /// PostgreSQL restarts), after deleting its subscriptions: another replica may lead now.
    async fn watch(&self) {
        loop {
            tokio::time::sleep(self.check_every).await;
            if !self.still_leading().await {
                tracing::warn!("this replica lost the subscriptions' lead; deleting its subscriptions");
                self.unsubscribe_all().await;
                return;
            }
            for s in &self.servers {
                for (i, c) in s.target.criteria.iter().enumerate() {
                    self.check(s, i, c).await;
                }
            }
        }
    }

    async fn check(&self, s: &Subscribed, i: usize, c: &Criteria) {
        let id = s.ids.lock().expect("ids lock")[i].clone();
        let broken = match &id {
            None => Some("none held".to_owned()),
            Some(id) => match s.client.get(&format!("Subscription/{id}")).await {
                Ok(sub) => match subscription::health(&sub) {
                    Health::Working => None,
                    Health::Broken(why) => Some(why),
                },
                Err(ClientError::NotFound(..)) => Some("gone from the server".to_owned()),
                // The server may be down for a moment: look again next round.
                Err(e) => {
                    self.failed(s, &e.to_string());
                    None
                }
            },
        };
        let Some(why) = broken else { return };
        tracing::warn!(server = %s.target.base, criteria = c.describe(), "subscription {why}; making it again");
        if let Some(old) = &id {
            let _ = s.client.delete(&format!("Subscription/{old}")).await;
        }
        let made = self.create(s, c).await;
        let mut ids = s.ids.lock().expect("ids lock");
        match made {
            Ok(new) => {
                ids[i] = Some(new);
                s.stats.lock().expect("stats lock").recreated += 1;
            }
            Err(e) => {
                ids[i] = None;
                drop(ids);
                self.failed(s, &e.to_string());
            }
        }
    }

    /// Deletes every subscription held (at shutdown), so the servers stop notifying.
    pub async fn unsubscribe_all(&self) {
        for s in &self.servers {
            let ids: Vec<String> = s.ids.lock().expect("ids lock").iter().flatten().cloned().collect();
            for id in ids {
                if let Err(e) = s.client.delete(&format!("Subscription/{id}")).await {
                    tracing::warn!(server = %s.target.base, "could not delete Subscription/{id}: {e}");
                }
            }
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
