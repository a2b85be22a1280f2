//! SMART on FHIR: what a server says of its authorization (`discovery`), the apps registered
//! with servers that may launch ehrqa (`clients`), and the App Launch itself (`launch`):
//! authorization code with PKCE, ending in a token and the patient it is for.

pub mod clients;
pub mod discovery;
pub mod launch;
pub mod oauth;

pub use clients::{SmartClient, SmartClients};
pub use discovery::SmartConfiguration;
pub use launch::{Launched, Launches, PendingLaunch};
