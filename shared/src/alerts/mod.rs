//! Subscriptions and alerts: which areas a subscription watches (`area`), how alerts are
//! delivered (`deliver`).

pub mod area;
pub mod deliver;
pub mod dispatch;
